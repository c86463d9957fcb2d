"""Validate YAML files against the ivr menu JSON Schema, as an editor would.

Usage: schema_check.py SCHEMA.json FILE.yaml... ; exits non-zero on the first invalid file.
YAML is read as YAML 1.2 (what ivr and the YAML language server read): dates stay strings.
"""
import json
import sys

import jsonschema
import yaml


class Yaml12(yaml.SafeLoader):
    pass


Yaml12.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
for path in sys.argv[2:]:
    doc = yaml.load(open(path), Loader=Yaml12)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    if errors:
        for e in errors:
            print(f"{path}: {list(e.absolute_path)}: {e.message}")
        sys.exit(1)
    print(f"{path}: valid")
