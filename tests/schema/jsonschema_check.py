#!/usr/bin/env python3
"""Checks documents against a JSON Schema with Debian's python3-jsonschema (Draft 2020-12).

usage: jsonschema_check.py SCHEMA DIR

Checks SCHEMA against the draft's meta-schema, then prints one line per DIR/*.json, by name:
"<name> valid", "<name> invalid", or "<name> unreadable" when Python's json module cannot read
it. Uses only what jsonschema 4.10 (Debian 12) has.
"""
import json
import os
import sys

import jsonschema


def main():
    schema_path, directory = sys.argv[1], sys.argv[2]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            print(name, "unreadable")
            continue
        print(name, "valid" if validator.is_valid(document) else "invalid")


if __name__ == "__main__":
    main()
