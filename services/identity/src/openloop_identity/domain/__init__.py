"""Identity's pure domain logic: validation and value types, no I/O."""
