"""The tasks API: an import task fetches an image from an http URL (a local server here), failures are the
task's, admins only; and the task each glance-direct import leaves on its image."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from collections.abc import Iterator

import pytest
from image_helpers import Raw, qcow2_image

DATA = qcow2_image(virtual_size=1 << 20)



@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    """An http server on a free port: /disk.qcow2 is a qcow2 image, anything else 404."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/disk.qcow2":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _task(name: str, url: str, disk_format: str = "qcow2") -> dict:
    return {"type": "import", "input": {
        "import_from": url, "import_from_format": disk_format,
        "image_properties": {"name": name, "disk_format": disk_format, "container_format": "bare"}}}


def _wait(raw: Raw, task_id: str) -> dict:
    for _ in range(300):
        task = raw("GET", f"/v2/tasks/{task_id}").json()
        if task["status"] in ("success", "failure"):
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not end: {task}")


def test_import_task_fetches_the_image(raw, web, prefix) -> None:
    resp = raw("POST", "/v2/tasks", json=_task(f"{prefix}-t", f"{web}/disk.qcow2"))
    assert resp.status_code == 201, resp.text
    task = resp.json()
    assert task["type"] == "import" and task["status"] in ("pending", "processing", "success")
    assert task["self"] == f"/v2/tasks/{task['id']}"
    done = _wait(raw, task["id"])
    assert done["status"] == "success", done
    image = raw("GET", f"/v2/images/{done['result']['image_id']}").json()
    assert image["status"] == "active" and image["name"] == f"{prefix}-t" and image["size"] == len(DATA)
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    listed = raw("GET", "/v2/tasks?limit=1000").json()["tasks"]
    assert task["id"] in [t["id"] for t in listed] and "input" not in listed[0]


def test_import_task_failures_are_the_tasks(raw, web, prefix) -> None:
    for url, why in ((f"{web}/missing.qcow2", "404"), ("http://no-such-host.invalid/x.qcow2", "")):
        task = raw("POST", "/v2/tasks", json=_task(f"{prefix}-f", url)).json()
        done = _wait(raw, task["id"])
        assert done["status"] == "failure" and why in done["message"], done
        assert raw("GET", f"/v2/images/{done['image_id']}").json()["status"] == "killed"
    # data that is not what the image says it is: qcow2 bytes for a vmdk image
    task = raw("POST", "/v2/tasks", json=_task(f"{prefix}-v", f"{web}/disk.qcow2", "vmdk")).json()
    assert _wait(raw, task["id"])["status"] == "failure"


def test_task_input_checked_and_admin_only(raw, demo_raw, web, prefix) -> None:
    good = _task(f"{prefix}-b", f"{web}/disk.qcow2")
    assert demo_raw("POST", "/v2/tasks", json=good).status_code == 403
    assert demo_raw("GET", "/v2/tasks").status_code == 403
    for change in ({"type": "export"}, {"input": "x"},
                   {"input": {**good["input"], "import_from": "file:///etc/passwd"}},
                   {"input": {k: v for k, v in good["input"].items() if k != "import_from_format"}},
                   {"input": {**good["input"], "image_properties": {"name": "x"}}},
                   {"input": {**good["input"], "image_properties": {**good["input"]["image_properties"],
                                                                    "status": "active"}}}):
        resp = raw("POST", "/v2/tasks", json={**good, **change})
        assert resp.status_code in (400, 403), (change, resp.text)
    assert raw("GET", "/v2/tasks/00000000-0000-0000-0000-000000000000").status_code == 404
    assert raw("GET", "/v2/tasks?status=done").status_code == 400
    assert raw("GET", "/v2/schemas/task").json()["name"] == "task"
