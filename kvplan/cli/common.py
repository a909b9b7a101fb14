"""Options shared by the commands, each declared once.

The deployment options of `fit`, `pick-g` and `roofline` are not written here: they are
generated from the fields of `kvplan.core.deployment.Deployment` (name, help, default), and
their values go, unparsed, to `kvplan.sources.deployment.parse_deployment` — the same
function a policy file's keys go through. Every option defaults to None ("not given"),
so an explicit flag always wins over an engine's or a model's default. `pick-g`'s design
options are generated the same way from `kvplan.core.design_choices.DesignChoices`
(`with_design_flags`); their values go, unparsed, to `kvplan.pick_g` as keywords and from
there to `parse_design`. The commands hand the bundle to `kvplan.api`
(`DeploymentFlags.api_kwargs`): there is no second path.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from kvplan.api import DEFAULT_CTX, load_model, positive
from kvplan.core.deployment import (
    MAX_BATCH,
    MAX_CTX,
    Kind,
    Setting,
    flag_name,
    setting_defaults,
    settings,
)
from kvplan.core.frozen import dataclass
from kvplan.errors import KvplanError
from kvplan.sources.deployment import exact_weights

if TYPE_CHECKING:
    from kvplan.core.design_choices import Knob

MODEL_ARG_HELP = "config.json/params.json path or folder, catalog name, or Hugging Face repo id."
GPU_FILE_OPT = typer.Option(
    None, "--gpu-file", help="YAML file adding or overriding GPU entries [env: KVPLAN_GPU_FILE]."
)
REVISION_OPT = typer.Option(None, "--revision", help="Hub revision (branch, tag or commit).")
TOKEN_OPT = typer.Option(None, "--token", help="Hub token [default: HF_TOKEN or the saved login].")
REFRESH_OPT = typer.Option(False, "--refresh", help="Skip the catalog; ask the Hub.")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object.")


def check_gpu(name: str, gpu_file: str | None) -> None:
    """Fail fast on an unknown GPU before any model lookup (which may touch the network)."""
    from kvplan.api import load_gpu

    load_gpu(name, gpu_file=gpu_file)


# ---- the deployment options, generated from the declaration ------------------------------
_ANNOTATIONS: dict[Kind, Any] = {
    Kind.INT: int | None,
    Kind.MAX_MODEL_LEN: str | None,  # a length, or auto / -1
    Kind.FRACTION: float | None,
    Kind.SIZE: str | None,
    Kind.ENGINE: str | None,
    Kind.ENGINE_VERSION: str | None,
    Kind.ENTRY_POINT: str | None,
    Kind.KV_DTYPE: str | None,
    Kind.WEIGHT_DTYPE: str | None,
    Kind.GPU: str,
    Kind.MODEL: str | None,
    Kind.COUNT: str | None,  # 13B, 13e9
    Kind.FLAG: bool,
    Kind.SWITCH: bool | None,  # --x / --no-x; not given: the engine's default
}


def _help(s: Setting, default: Any) -> str:
    if s.required:
        return s.help
    return f"{s.help} [default: {s.default_text or default}]"


def _option(name: str, s: Setting, default: Any) -> inspect.Parameter:
    flag = flag_name(name)
    if s.kind is Kind.SWITCH:  # the engine's own pair: --enable-prefix-caching / --no-...
        flag = f"{flag}/--no-{flag[2:]}"
    option = typer.Option(... if s.required else None, flag, help=_help(s, default))
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=_ANNOTATIONS[s.kind]
    )


_RESOLUTION = (
    ("gpu_file", str | None, GPU_FILE_OPT),
    ("revision", str | None, REVISION_OPT),
    ("token", str | None, TOKEN_OPT),
    ("refresh", bool, REFRESH_OPT),
    ("as_json", bool, JSON_OPT),
)


@dataclass(frozen=True)
class DeploymentFlags:
    """The deployment settings as typed (unparsed), and how to find the model."""

    settings: dict[str, Any]
    gpu_file: str | None
    revision: str | None
    token: str | None
    refresh: bool
    as_json: bool

    @property
    def gpu(self) -> str:
        return str(self.settings["gpu"])

    @property
    def weight_dtype(self) -> str | None:
        value = self.settings.get("weight_dtype")
        return None if value is None else str(value)

    def api_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the `kvplan.api` function the command wraps."""
        return {
            **self.settings,
            "gpu_file": self.gpu_file,
            "revision": self.revision,
            "token": self.token,
            "refresh": self.refresh,
        }


def with_deployment_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Add the deployment options (from the declaration) and the model-resolution options
    to a typer command; it receives them as one `flags=` bundle."""
    own = [p for p in inspect.signature(command).parameters.values() if p.name != "flags"]
    declared = settings()
    defaults = setting_defaults()
    extra = [_option(name, s, defaults[name]) for name, s in declared.items()]
    extra += [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)
        for name, ann, opt in _RESOLUTION
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        flags = DeploymentFlags(
            settings={name: kwargs.pop(name) for name in declared},
            **{name: kwargs.pop(name) for name, _, _ in _RESOLUTION},
        )
        command(flags=flags, **kwargs)

    wrapper.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
    return wrapper


def with_fixed_settings(swept: frozenset[str]) -> Callable[..., Callable[..., None]]:
    """Add every deployment option (from the declaration) that a command does not take as a
    list of its own (`swept`): one value each, for every combination. The command receives
    the ones given as one `settings=` dict (absent = the default, as in `fit`)."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command).parameters.values() if p.name != "settings"]
        defaults = setting_defaults()
        fixed = {name: s for name, s in settings().items() if name not in swept}
        extra = [_option(name, s, defaults[name]) for name, s in fixed.items()]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> None:
            given = {name: kwargs.pop(name) for name in fixed}
            command(settings={k: v for k, v in given.items() if v is not None}, **kwargs)

        wrapper.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
        return wrapper

    return decorate


# ---- pick-g's design options, generated from the declaration -----------------------------
def _design_option(name: str, k: Knob, default: Any) -> inspect.Parameter:
    """A knob's help states its own default where a rule fills it in (the knob's default
    is "not given"), so the help is the declaration's text as it is."""
    option = typer.Option(default, flag_name(name), help=k.help)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=_ANNOTATIONS[k.kind]
    )


def with_design_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Add pick-g's design options (from the declaration) after the command's own options;
    it receives the values as typed, as one `design=` dict (knob -> value). (Imported
    here: only pick-g has them, and fit/roofline import this module too.)"""
    from kvplan.core.design_choices import knob_defaults, knobs

    own = [p for p in inspect.signature(command).parameters.values() if p.name != "design"]
    declared = knobs()
    defaults = knob_defaults()
    extra = [_design_option(name, k, defaults[name]) for name, k in declared.items()]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        design = {name: kwargs.pop(name) for name in declared}
        command(design=design, **kwargs)

    wrapper.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
    return wrapper


__all__ = [
    "DEFAULT_CTX",
    "MAX_BATCH",
    "MAX_CTX",
    "KvplanError",
    "exact_weights",
    "load_model",
    "positive",
]
