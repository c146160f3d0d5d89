"""The one place that makes Stable Cascade pipelines load on current diffusers.

Stable Cascade's VQGAN (`PaellaVQModel`) lives in `diffusers.pipelines.deprecated.wuerstchen` since the
Würstchen pipelines were deprecated, but saved pipelines still name it by its old home:

- the hub repositories (`stabilityai/stable-cascade`) declare `"vqgan": ["wuerstchen", "PaellaVQModel"]`,
  which diffusers resolves as `diffusers.pipelines.wuerstchen`, a module that no longer exists;
- a pipeline saved by current diffusers declares `["diffusers", "PaellaVQModel"]`, and `diffusers` has no
  such attribute, so `save_pretrained` writes a directory that `from_pretrained` refuses.

`enable_stable_cascade_loading()` makes both spellings resolve to the deprecated module. Pipelines built
after it has run record the hub spelling again (a pipeline records it when built), so the directories they
save load on any diffusers version that still has the class. Call it before building, saving or loading a
Stable Cascade pipeline; it is idempotent.
"""

from __future__ import annotations

import importlib
import sys

OLD_MODULE = "diffusers.pipelines.wuerstchen"
NEW_MODULE = "diffusers.pipelines.deprecated.wuerstchen"


def enable_stable_cascade_loading() -> None:
    """Alias `diffusers.pipelines.wuerstchen` to the deprecated module and expose `PaellaVQModel` on the
    top-level `diffusers` namespace, where the two kinds of `model_index.json` look for it."""
    import diffusers
    import diffusers.pipelines

    try:
        importlib.import_module(OLD_MODULE)
        return  # an older diffusers that still has the module: nothing to fix
    except ImportError:
        pass
    deprecated = importlib.import_module(NEW_MODULE)
    sys.modules[OLD_MODULE] = deprecated
    diffusers.pipelines.wuerstchen = deprecated
    if getattr(diffusers, "PaellaVQModel", None) is None:
        diffusers.PaellaVQModel = deprecated.PaellaVQModel
