"""Project tags: `/v3/projects/{project_id}/tags[/{tag}]` (the `tags`, `tags-any`, `not-tags` and `not-tags-any`
filters of the project list are in resources.py)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.validation import check_text
from pocketstack.identity.api.common import enforce, link, manager
from pocketstack.identity.store import projects
from pocketstack.identity.store.common import Project, fetch

MAX_TAGS = 80


def check_tag(tag: Any) -> str:
    """A tag as Keystone accepts it: a non-empty string of at most 255 characters without '/' or ','."""
    if not isinstance(tag, str) or not tag or len(tag) > 255 or "/" in tag or "," in tag:
        raise BadRequest(f"Invalid input: {tag!r} is not a valid tag (1-255 characters, no '/' or ',').")
    check_text("tag", tag)
    return tag


def check_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list):
        raise BadRequest("Invalid input: 'tags' must be a list of strings.")
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"Invalid input: a project has at most {MAX_TAGS} tags.")
    checked = [check_tag(t) for t in tags]
    return list(dict.fromkeys(checked))


async def _project(request: Request, project_id: str, action: str) -> Project:
    project = await fetch(manager(request).db, Project, project_id, "project")
    enforce(request, action, {"project": {"id": project_id, "domain_id": project.domain_id}})
    return project


def _tags_body(request: Request, project_id: str, tags: list[str]) -> dict[str, Any]:
    return {"tags": tags, "links": link(request, f"projects/{project_id}/tags")}


async def list_tags(request: Request, project_id: str) -> Response:
    project = await _project(request, project_id, "identity:list_project_tags")
    return json_response(_tags_body(request, project_id, list(project.tags or [])))


async def replace_tags(request: Request, project_id: str) -> Response:
    await _project(request, project_id, "identity:update_project_tags")
    body = await json_body(request)
    if not isinstance(body, dict) or "tags" not in body:
        raise BadRequest("Invalid input: 'tags' is a required property.")
    tags = await projects.set_tags(manager(request), project_id, lambda _: check_tags(body["tags"]))
    return json_response(_tags_body(request, project_id, tags))


async def delete_tags(request: Request, project_id: str) -> Response:
    await _project(request, project_id, "identity:delete_project_tags")
    await projects.set_tags(manager(request), project_id, lambda _: [])
    return Response(status_code=204)


async def check_project_tag(request: Request, project_id: str, tag: str) -> Response:
    project = await _project(request, project_id, "identity:get_project_tag")
    if tag not in (project.tags or []):
        raise NotFound(f"Tag {tag} not found for project {project_id}.")
    return Response(status_code=204)


async def add_tag(request: Request, project_id: str, tag: str) -> Response:
    await _project(request, project_id, "identity:create_project_tag")
    check_tag(tag)

    def add(current: list[str]) -> list[str]:
        if tag in current:
            return current
        if len(current) >= MAX_TAGS:
            raise BadRequest(f"Invalid input: a project has at most {MAX_TAGS} tags.")
        return [*current, tag]
    await projects.set_tags(manager(request), project_id, add)
    return Response(status_code=201,  # an empty body, as the API working group's tags guideline has it
                    headers={"Location": link(request, f"projects/{project_id}/tags/{tag}")["self"]})


async def delete_tag(request: Request, project_id: str, tag: str) -> Response:
    await _project(request, project_id, "identity:delete_project_tag")

    def remove(current: list[str]) -> list[str]:
        if tag not in current:
            raise NotFound(f"Tag {tag} not found for project {project_id}.")
        return [t for t in current if t != tag]
    await projects.set_tags(manager(request), project_id, remove)
    return Response(status_code=204)
