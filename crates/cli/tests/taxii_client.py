"""The OASIS taxii2-client (PyPI) drives a running `mamori serve` (issue 8 acceptance).

Usage: taxii_client.py BASE_URL CENTRE_TOKEN OPERATOR_TOKEN

The centre's token goes over HTTP Basic (user name ignored, token as the password), the
operator's as a bearer token through a requests auth object, so both carriers are used.
Checks discovery, the API root, collections, a POSTed envelope and its status, paged
fetches with as_pages, added_after, a single object, its versions, and that the operator
sees the TLP:GREEN objects but not the centre's TLP:AMBER one. Prints one line per check
and `done` at the end; exits non-zero on the first failure.
"""

import sys

import requests
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import Server, as_pages

GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"


class Bearer(requests.auth.AuthBase):
    def __init__(self, token):
        self.token = token

    def __call__(self, r):
        r.headers["Authorization"] = "Bearer " + self.token
        return r


def indicator(n, marking):
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--6b2bd5b0-6d1e-4c4e-9c1a-%012d" % n,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '198.51.100.%d']" % (n % 250),
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "object_marking_refs": [marking],
    }


def check(cond, what):
    if not cond:
        print("FAILED: " + what, flush=True)
        sys.exit(1)
    print("ok: " + what, flush=True)


def main():
    base, centre_token, operator_token = sys.argv[1:4]
    server = Server(base + "/taxii2/", user="taxii", password=centre_token)
    check(server.title == "mamori TAXII 2.1", "discovery title")
    check(len(server.api_roots) == 1, "one API root")
    root = server.api_roots[0]
    check(root.url == base + "/taxii2/api/", "API root URL " + root.url)
    check("application/taxii+json;version=2.1" in root.versions, "API root versions")
    cols = {c.alias: c for c in root.collections}
    check(sorted(cols) == ["indicators", "reports"], "collections " + str(sorted(cols)))
    ind = cols["indicators"]
    check(ind.can_read and ind.can_write, "centre may read and write indicators")

    # POST 250 GREEN indicators and one AMBER; the status is complete at once.
    first = [indicator(n, GREEN) for n in range(250)] + [indicator(999, AMBER)]
    status = ind.add_objects({"objects": first})
    check(status.status == "complete", "status complete")
    check(status.success_count == 251 and status.failure_count == 0, "251 successes")
    status.refresh()
    check(status.total_count == 251, "status re-read through the status endpoint")

    # Paged fetch: 100 at a time.
    pages = list(as_pages(ind.get_objects, per_request=100))
    got = [o["id"] for p in pages for o in p.get("objects", [])]
    check(len(pages) == 3, "3 pages of at most 100 (got %d)" % len(pages))
    check(got == [o["id"] for o in first], "every object once, in date_added order")

    # added_after: the manifest tells when the first envelope was added.
    manifest = [r for p in as_pages(ind.get_manifest, per_request=100) for r in p["objects"]]
    check(len(manifest) == 251, "manifest of 251 records")
    last_added = max(r["date_added"] for r in manifest)
    second = [indicator(n, GREEN) for n in range(1000, 1005)]
    ind.add_objects({"objects": second})
    after = ind.get_objects(added_after=last_added)
    check([o["id"] for o in after["objects"]] == [o["id"] for o in second],
          "added_after returns only the second envelope")

    # One object, a new version of it, and its versions.
    newer = indicator(0, GREEN)
    newer["modified"] = "2026-02-01T00:00:00.000Z"
    ind.add_objects({"objects": [newer]})
    one = ind.get_object(newer["id"])
    check(one["objects"][0]["modified"] == "2026-02-01T00:00:00.000Z", "get_object: newest version")
    versions = ind.object_versions(newer["id"])
    check(versions["versions"] == ["2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z"],
          "object_versions")

    # The operator (bearer token) sees the GREEN objects, not the centre's AMBER one.
    op = Server(base + "/taxii2/", auth=Bearer(operator_token))
    op_ind = {c.alias: c for c in op.api_roots[0].collections}["indicators"]
    seen = [o["id"] for p in as_pages(op_ind.get_objects, per_request=100)
            for o in p.get("objects", [])]
    check(len(seen) == 255, "operator sees 255 GREEN objects (got %d)" % len(seen))
    check(indicator(999, AMBER)["id"] not in seen, "operator does not see the AMBER object")
    try:
        op_ind.get_object(indicator(999, AMBER)["id"])
        check(False, "AMBER object refused to the operator")
    except (requests.exceptions.HTTPError, TAXIIServiceException) as e:
        check("404" in str(e), "AMBER object is 404 to the operator")
    print("done", flush=True)


if __name__ == "__main__":
    main()
