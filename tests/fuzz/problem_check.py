"""A schemathesis check: every error the API answers is an RFC 9457 problem document with a
stable code. Loaded through SCHEMATHESIS_HOOKS by tests/tests/openapi_fuzz.rs, which also
teaches it to send a preset component's bytes."""

import json
import re

import schemathesis

CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


@schemathesis.check
def problem_document_with_code(ctx, response, case):
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("application/problem+json"):
        raise AssertionError(
            f"{response.status_code} answered as {content_type!r}, not application/problem+json"
        )
    problem = json.loads(response.content)
    if not CODE.match(str(problem.get("code", ""))):
        raise AssertionError(f"problem without a stable code: {problem}")
    if problem.get("status") != response.status_code:
        raise AssertionError(
            f"problem status {problem.get('status')} differs from the answer's {response.status_code}"
        )
    if not str(problem.get("detail", "")).strip():
        raise AssertionError(f"problem without a detail: {problem}")
    return None


# A preset is published as the component's raw bytes (`application/wasm`): sent as binary.
schemathesis.serializer.alias("application/wasm", "application/octet-stream")
