"""The rule file: its YAML schema, expression parser and unit handling."""
