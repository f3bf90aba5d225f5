#!/usr/bin/env python3
"""Extract the GitHub REST operations changegate calls from @octokit/openapi into a small fixture.

    mkdir -p /tmp/x && cd /tmp/x && npm pack @octokit/openapi@23.0.2 && tar xzf octokit-openapi-23.0.2.tgz
    python3 extract-github-openapi.py package/generated/api.github.com.deref.json > github-openapi.json

Keeps, per operation: method, path template, operationId, path and query parameters (the
query parameters' schemas), the request body
schema (dereferenced; descriptions, examples and titles dropped; validation keywords kept) and
the documented success status with the required fields of its response body.
"""
import json
import sys

OPS = [
    ("post", "/repos/{owner}/{repo}/check-runs"),
    ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("post", "/repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule"),
    ("post", "/app/installations/{installation_id}/access_tokens"),
    ("get", "/repos/{owner}/{repo}/installation"),
    ("get", "/user"),
    ("get", "/orgs/{org}/teams/{team_slug}/members"),
]
WEBHOOKS = [
    ("deployment-protection-rule-requested",
     ["action", "environment", "event", "sha", "ref", "deployment_callback_url",
      "deployment.sha", "deployment.environment", "repository.full_name", "installation.id"]),
]
KEEP = {"type", "required", "properties", "enum", "maxLength", "minLength", "maxItems",
        "minItems", "items", "anyOf", "oneOf", "format", "additionalProperties", "nullable"}


def strip(s):
    if isinstance(s, dict):
        out = {}
        for k, v in s.items():
            if k == "properties":
                out[k] = {name: strip(sub) for name, sub in v.items()}
            elif k in KEEP:
                out[k] = strip(v)
        return out
    if isinstance(s, list):
        return [strip(x) for x in s]
    return s


def main():
    spec = json.load(open(sys.argv[1]))
    out = {"source": {"package": "@octokit/openapi", "version": spec["info"]["version"],
                      "file": "generated/api.github.com.deref.json"}, "operations": []}
    for method, path in OPS:
        op = spec["paths"][path][method]
        ok = next(c for c in op["responses"] if c.startswith("2"))
        resp = op["responses"][ok].get("content", {}).get("application/json", {}).get("schema", {})
        if resp.get("type") == "array":
            resp = resp.get("items", {})
        if "oneOf" in resp:
            # Fields every alternative requires (e.g. the private and the public user).
            alts = [set(a.get("required", [])) for a in resp["oneOf"]]
            resp = {"required": [f for f in resp["oneOf"][0].get("required", [])
                                 if all(f in a for a in alts)]}
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        out["operations"].append({
            "operation_id": op["operationId"],
            "method": method.upper(),
            "path": path,
            "path_params": [p["name"] for p in op.get("parameters", []) if p.get("in") == "path"],
            "query_params": {p["name"]: strip(p.get("schema", {})) for p in op.get("parameters", [])
                             if p.get("in") == "query"},
            "request_body": strip(body) if body else None,
            "success": int(ok),
            "response_required": resp.get("required", []),
        })
    # The webhook changegate answers: only the fields it reads, with their types and enums.
    out["webhooks"] = []
    for name, fields in WEBHOOKS:
        schema = spec["x-webhooks"][name]["post"]["requestBody"]["content"]["application/json"]["schema"]
        props = {}
        for f in fields:
            top, _, sub = f.partition(".")
            src = schema["properties"][top]
            if sub:
                props.setdefault(top, {"type": src.get("type"), "properties": {}})
                props[top]["properties"][sub] = strip(src["properties"][sub])
            else:
                props[top] = strip(src)
        out["webhooks"].append({"name": name, "schema": {"type": "object", "properties": props}})
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


main()
