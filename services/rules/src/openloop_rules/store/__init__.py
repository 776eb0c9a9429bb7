"""The rules database, one module per kind of row (SQLAlchemy Core). Nothing here runs per
decision: decisions read the in-memory schedule, and recorded decisions are written in the
background."""
