-- Dev only: one role and one database per service, as in production, so a
-- service can never read another's tables. Runs once, on an empty data dir.
CREATE ROLE openloop_identity LOGIN PASSWORD 'openloop-dev';
CREATE DATABASE openloop_identity OWNER openloop_identity;
CREATE ROLE openloop_rules LOGIN PASSWORD 'openloop-dev';
CREATE DATABASE openloop_rules OWNER openloop_rules;
CREATE ROLE openloop_ledger LOGIN PASSWORD 'openloop-dev';
CREATE DATABASE openloop_ledger OWNER openloop_ledger;
CREATE ROLE openloop_settlement LOGIN PASSWORD 'openloop-dev';
CREATE DATABASE openloop_settlement OWNER openloop_settlement;
CREATE ROLE openloop_gateway LOGIN PASSWORD 'openloop-dev';
CREATE DATABASE openloop_gateway OWNER openloop_gateway;
