#!/usr/bin/env python3
"""Validates template.yaml offline: transforms it with the SAM translator (as CloudFormation
would) and writes the result, so cfn-lint can check the transformed template too (it catches
circular dependencies the plain lint misses). Usage: validate_template.py TEMPLATE OUT_JSON"""
import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """Stands in for IAM's managed-policy lookup, which needs AWS: the template names none."""

    def load(self):
        return {}


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        template = yaml_parse(f.read())
    # As `sam package` would: local code paths become S3 locations.
    for res in template.get("Resources", {}).values():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function" and not str(props.get("CodeUri", "")).startswith("s3://"):
            props["CodeUri"] = "s3://packaged-code/" + str(props.get("CodeUri", "function")) + ".zip"
    transformed = transform(template, {}, NoManagedPolicies())
    with open(out, "w") as f:
        json.dump(transformed, f, indent=1, default=str)
    print(f"transformed {src} -> {out}: {len(transformed['Resources'])} resources")


if __name__ == "__main__":
    main()
