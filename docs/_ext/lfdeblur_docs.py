"""A small Sphinx extension for the napari-lfdeblur docs.

- Public names are documented once, as ``napari_lfdeblur.<name>`` (what users
  import), while docstrings often refer to them by their defining module
  (``:func:`~napari_lfdeblur.lightfield.refocus.refocus```, ``:class:`~.events.CancelToken```).
  A reference that Sphinx cannot resolve is retried by its last name: against
  ``napari_lfdeblur.<name>`` first, then against the one documented object
  with that name, if there is exactly one.  Anything else stays unresolved
  (and fails a nitpicky build).
- The build warns (fails with ``-W``) when a name of ``napari_lfdeblur.__all__``
  is missing from the API reference, so the reference stays complete.
"""

from __future__ import annotations

from sphinx.util import logging

logger = logging.getLogger(__name__)

PACKAGE = "napari_lfdeblur"


def _documented(env) -> dict:
    return env.get_domain("py").objects


def resolve_by_name(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    name = target.lstrip(".~").rsplit(".", 1)[-1]
    if not name:
        return None
    objects = _documented(env)
    if f"{PACKAGE}.{name}" in objects:
        candidates = [f"{PACKAGE}.{name}"]
    else:  # autodoc also records each object's defining path (an alias): count each object once
        candidates = [full for full, entry in objects.items()
                      if (full == name or full.endswith("." + name)) and not entry.aliased]
    if len(candidates) != 1:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node.get("refdoc", ""), app.builder, node.get("reftype", "obj"),
                               candidates[0], node, contnode)


def check_api_complete(app, env):
    import napari_lfdeblur

    objects = _documented(env)
    for name in napari_lfdeblur.__all__:
        if name.startswith("__"):
            continue
        if f"{PACKAGE}.{name}" not in objects:
            logger.warning(f"public name {PACKAGE}.{name} (in __all__) is not in the API reference: add it to docs/api.md",
                           type="lfdeblur", subtype="api")


def setup(app):
    app.connect("missing-reference", resolve_by_name)
    app.connect("env-check-consistency", check_api_complete)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
