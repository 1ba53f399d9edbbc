"""Study files: the TOML format and the frozen dataclasses it maps onto one to one.

A study is the cross product tasks x models x optimizers x seeds, every trial spending the same
budget of training environment steps. `load_study` reads a file, checks its structure (each
dataclass validates itself at construction) and then the names it refers to (`validate_names`:
gymnasium ids, model and optimizer registries and their settings). Every error is a
`ValueError` naming the field by its dotted path (`optimizers[1].name`), the value and what is
allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synevo.study.trial import TrialSpec

logger = logging.getLogger(__name__)

PARALLEL_MODES = ("trials", "population")
"""`trials`: every trial is a Ray task; `population`: one ES generation is split over workers."""

LABEL_PATTERN = re.compile(r"[A-Za-z0-9_.+-]+")
"""Labels name runs (`task/label/seedN`) and files, so they hold no `/` or spaces."""

STUDY_KEYS = (
    *("name", "tasks", "seeds", "budget"),
    *("model", "models", "optimizers", "evaluation", "execution"),
)

REQUIRED_KEYS = {
    "name": "the MLflow experiment name",
    "tasks": "a list of gymnasium ids",
    "seeds": "a list of integer seeds",
    "budget": "training environment steps per trial",
    "optimizers": "one [[optimizers]] table per optimizer",
}


def _is_int(value: Any) -> bool:
    """True for ints, false for bools (which Python counts as ints)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_positive_int(field_name: str, value: Any) -> None:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{field_name} must be an integer > 0, got {value!r}")


def _check_non_negative_int(field_name: str, value: Any) -> None:
    if not _is_int(value) or value < 0:
        raise ValueError(f"{field_name} must be an integer >= 0 (0 = none), got {value!r}")


def _check_label(field_name: str, value: Any) -> None:
    if not isinstance(value, str) or not LABEL_PATTERN.fullmatch(value):
        raise ValueError(
            f"{field_name} must be a non-empty string of letters, digits and '_.+-', got {value!r}"
        )


def _check_settings(settings: Any) -> None:
    if not isinstance(settings, dict) or not all(isinstance(k, str) for k in settings):
        raise ValueError(f"settings must be a dict with string keys, got {settings!r}")


@dataclass(frozen=True)
class ModelConfig:
    """One genome model of a study: `[model]` or one table of `[[models]]`.

    Args:
        name: a `synevo.models.MODELS` registry name.
        settings: keyword settings passed to `build_model` (every other key of the table).
        label: the name of this model variant in trial labels; defaults to `name`.
    """

    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    label: str | None = None

    def __post_init__(self) -> None:
        _check_label("name", self.name)
        _check_settings(self.settings)
        if self.label is None:
            object.__setattr__(self, "label", self.name)
        _check_label("label", self.label)


@dataclass(frozen=True)
class OptimizerConfig:
    """One optimizer of a study: one table of `[[optimizers]]`.

    Args:
        name: a `synevo.optimizers.OPTIMIZERS` registry name.
        label: the name of this optimizer variant in trial labels; defaults to `name`.
        settings: the optimizer's settings (every other key of the table).
    """

    name: str
    label: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_label("name", self.name)
        if self.label is None:
            object.__setattr__(self, "label", self.name)
        _check_label("label", self.label)
        _check_settings(self.settings)


@dataclass(frozen=True)
class EvaluationConfig:
    """How trials are evaluated: `[evaluation]`.

    Args:
        eval_every: training environment steps between two checkpoint evaluations.
        eval_episodes: greedy seeded episodes per checkpoint evaluation.
        final_episodes: greedy seeded episodes of the final evaluation of the best genome.
        agents: networks sampled from the best genome, each scored as an agent (the paper's
            protocol: 100); 0 scores none. Needs a model that samples (SynaptoGen).
        agent_episodes: greedy seeded episodes whose mean return is an agent's score.
        free_assembly: free-assembly networks of the best genome, scored like the sampled
            agents (the paper's control: 100); 0 scores none. Needs SynaptoGen.
    """

    eval_every: int = 10_000
    eval_episodes: int = 20
    final_episodes: int = 100
    agents: int = 0
    agent_episodes: int = 10
    free_assembly: int = 0

    def __post_init__(self) -> None:
        _check_positive_int("eval_every", self.eval_every)
        _check_positive_int("eval_episodes", self.eval_episodes)
        _check_positive_int("final_episodes", self.final_episodes)
        _check_non_negative_int("agents", self.agents)
        _check_positive_int("agent_episodes", self.agent_episodes)
        _check_non_negative_int("free_assembly", self.free_assembly)


@dataclass(frozen=True)
class ExecutionConfig:
    """Where trials run: `[execution]`.

    Args:
        workers: Ray workers; 0 runs everything in-process; None uses one per CPU.
        parallel: `"trials"` (each trial a Ray task) or `"population"` (each evolution
            generation split over the workers).
    """

    workers: int | None = None
    parallel: str = "trials"

    def __post_init__(self) -> None:
        if self.workers is not None and (not _is_int(self.workers) or self.workers < 0):
            raise ValueError(
                f"workers must be an integer >= 0 (0 = in-process) or omitted (one per CPU), "
                f"got {self.workers!r}"
            )
        if self.parallel not in PARALLEL_MODES:
            raise ValueError(
                f"parallel must be one of {list(PARALLEL_MODES)}, got {self.parallel!r}"
            )


@dataclass(frozen=True)
class StudyConfig:
    """A whole study: the top level of a study file.

    Args:
        name: the MLflow experiment name.
        tasks: gymnasium environment ids with discrete actions.
        seeds: distinct trial seeds (integers >= 0).
        budget: training environment steps of every trial.
        models: the genome models, each trained by every optimizer.
        optimizers: the optimizers, with distinct labels.
    """

    name: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    budget: int
    models: tuple[ModelConfig, ...]
    optimizers: tuple[OptimizerConfig, ...]
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name must be a non-empty string (the experiment), got {self.name!r}")
        for key in ("tasks", "seeds", "models", "optimizers"):
            object.__setattr__(self, key, _as_tuple(key, getattr(self, key)))

        self._check_tasks()
        self._check_seeds()
        _check_positive_int("budget", self.budget)
        self._check_parts("models", ModelConfig)
        self._check_parts("optimizers", OptimizerConfig)
        self._check_trial_labels()
        if not isinstance(self.evaluation, EvaluationConfig):
            raise ValueError(f"evaluation must be an EvaluationConfig, got {self.evaluation!r}")
        if not isinstance(self.execution, ExecutionConfig):
            raise ValueError(f"execution must be an ExecutionConfig, got {self.execution!r}")

    def _check_tasks(self) -> None:
        if not self.tasks:
            raise ValueError("tasks must list at least one gymnasium id, got []")
        for i, task in enumerate(self.tasks):
            if not isinstance(task, str) or not task.strip():
                raise ValueError(f"tasks[{i}] must be a gymnasium id string, got {task!r}")
        _check_distinct(self.tasks, "tasks[{}]")

    def _check_seeds(self) -> None:
        if not self.seeds:
            raise ValueError("seeds must list at least one integer seed, got []")
        for i, seed in enumerate(self.seeds):
            if not _is_int(seed) or seed < 0:
                raise ValueError(f"seeds[{i}] must be an integer >= 0, got {seed!r}")
        _check_distinct(self.seeds, "seeds[{}]")

    def _check_parts(self, key: str, cls: type) -> None:
        parts = getattr(self, key)
        if not parts:
            raise ValueError(f"{key} must hold at least one {cls.__name__}, got []")
        for i, part in enumerate(parts):
            if not isinstance(part, cls):
                raise ValueError(f"{key}[{i}] must be of type {cls.__name__}, got {part!r}")
        _check_distinct([part.label for part in parts], key + "[{}].label")

    def _check_trial_labels(self) -> None:
        seen: dict[str, tuple[str, str]] = {}
        for model in self.models:
            for optimizer in self.optimizers:
                label = self.trial_label(model, optimizer)
                pair = (model.label, optimizer.label)
                if label in seen:
                    raise ValueError(
                        f"models/optimizers labels {pair} and {seen[label]} both give the trial "
                        f"label {label!r}; rename one of them"
                    )
                seen[label] = pair

    def trial_label(self, model: ModelConfig, optimizer: OptimizerConfig) -> str:
        """The optimizer label, prefixed with the model label when the study has several."""
        if len(self.models) == 1:
            return optimizer.label
        return f"{model.label}-{optimizer.label}"

    def trials(self) -> list[TrialSpec]:
        """Every trial of the study: tasks x models x optimizers x seeds, in that order."""
        return [
            TrialSpec(
                task=task,
                model=model.name,
                model_settings=copy.deepcopy(model.settings),
                optimizer=optimizer.name,
                optimizer_settings=copy.deepcopy(optimizer.settings),
                label=self.trial_label(model, optimizer),
                seed=seed,
                budget=self.budget,
                eval_every=self.evaluation.eval_every,
                eval_episodes=self.evaluation.eval_episodes,
                final_episodes=self.evaluation.final_episodes,
                agents=self.evaluation.agents,
                agent_episodes=self.evaluation.agent_episodes,
                free_assembly=self.evaluation.free_assembly,
            )
            for task in self.tasks
            for model in self.models
            for optimizer in self.optimizers
            for seed in self.seeds
        ]

    def with_overrides(
        self,
        *,
        budget: int | None = None,
        seeds: Sequence[int] | None = None,
        tasks: Sequence[str] | None = None,
        workers: int | None = None,
        parallel: str | None = None,
    ) -> StudyConfig:
        """A validated copy with the given fields replaced; None keeps a field as it is."""
        changes: dict[str, Any] = {}
        if budget is not None:
            changes["budget"] = budget
        if seeds is not None:
            changes["seeds"] = tuple(seeds)
        if tasks is not None:
            changes["tasks"] = tuple(tasks)
        execution: dict[str, Any] = {}
        if workers is not None:
            execution["workers"] = workers
        if parallel is not None:
            execution["parallel"] = parallel
        if execution:
            changes["execution"] = dataclasses.replace(self.execution, **execution)
        return dataclasses.replace(self, **changes)


def _as_tuple(key: str, value: Any) -> tuple:
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Sequence):
        raise ValueError(f"{key} must be a list, got {value!r}")
    return tuple(value)


def _check_distinct(values: Sequence[Any], item: str) -> None:
    """Raise on the first value seen twice, naming both positions (`item` is `"seeds[{}]"`)."""
    first: dict[Any, int] = {}
    for i, value in enumerate(values):
        if value in first:
            raise ValueError(
                f"{item.format(i)} = {value!r} repeats {item.format(first[value])}; "
                f"each entry must be distinct"
            )
        first[value] = i


# Reading a study file


def load_study(path: str | Path, overrides: Sequence[tuple[str, Any]] = ()) -> StudyConfig:
    """Read, validate and return the study in the TOML file `path`.

    Args:
        overrides: `(dotted key, value)` pairs applied to the file's table before validation,
            in order (see `apply_overrides`); from the command line's `--set KEY=VALUE`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file is not valid TOML, misses or misspells a key, holds a value out
            of range, or names an unknown task, model, optimizer or setting.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study file {path} does not exist")
    try:
        with path.open("rb") as f:
            table = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"study file {path} is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"study file {path} is not UTF-8 text: {e}") from None

    try:
        config = study_from_dict(apply_overrides(table, overrides))
        validate_names(config)
    except ValueError as e:
        raise ValueError(f"study file {path}: {e}") from None
    return config


# Overriding keys of a study file (`--set KEY=VALUE`)

OVERRIDE_KEYS = (
    *("name", "tasks", "seeds", "budget", "evaluation.<key>", "execution.<key>"),
    *("model.<setting>", "models.<label|index>.<setting>", "optimizers.<label|index>.<setting>"),
)
"""The forms a dotted override key takes; `<label|index>` picks one table of an array by its
label (its name when it has none) or by its 0-based position."""

_INTEGRAL_EXPONENT = re.compile(r"[+-]?[0-9_]+[eE]\+?[0-9_]+")


def parse_assignment(text: str) -> tuple[str, Any]:
    """Split `KEY=VALUE` into the key and the value read as TOML (see `parse_value`).

    Raises:
        ValueError: if `text` has no `=` or an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set expects KEY=VALUE such as budget=20000, got {text!r}")
    return key.strip(), parse_value(value.strip())


def parse_value(text: str) -> Any:
    """A TOML value (`2`, `3e-4`, `[1, 2]`, `"x"`, `true`); a bare word stays a string.

    An integral number in exponent form (`2e4`, `5e5`) becomes an int, so budgets can be
    written that way.
    """
    try:
        parsed = tomllib.loads(f"value = {text}")
    except tomllib.TOMLDecodeError:
        return text
    if set(parsed) != {"value"}:
        return text
    value = parsed["value"]
    if isinstance(value, float) and value.is_integer() and _INTEGRAL_EXPONENT.fullmatch(text):
        return int(value)
    return value


def apply_overrides(table: dict[str, Any], overrides: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of a parsed study file with every `(dotted key, value)` of `overrides` set.

    Keys take the forms of `OVERRIDE_KEYS`: `budget`, `evaluation.agents`,
    `model.genes`, `optimizers.snes.popsize`, `models.0.hidden`. Setting names inside a
    model or optimizer table are checked later, with the registries.

    Raises:
        ValueError: naming the key and the allowed keys, for a key the file cannot take.
    """
    table = copy.deepcopy(table)
    for key, value in overrides:
        try:
            _override(table, key, value)
        except ValueError as e:
            raise ValueError(f"override {key!r}: {e}") from None
    return table


def _override(table: dict[str, Any], key: str, value: Any) -> None:
    head, _, rest = key.partition(".")
    if head in ("name", "tasks", "seeds", "budget") and not rest:
        table[head] = value
    elif head in ("evaluation", "execution") and rest:
        cls = EvaluationConfig if head == "evaluation" else ExecutionConfig
        allowed = [f.name for f in dataclasses.fields(cls)]
        if rest not in allowed:
            raise ValueError(f"[{head}] has no key {rest!r}; allowed: {allowed}")
        sub = table.setdefault(head, {})
        if not isinstance(sub, dict):
            raise ValueError(f"{head} must be a table ([{head}]), got {sub!r}")
        sub[rest] = value
    elif head == "model" and rest and "." not in rest:
        if not isinstance(table.get("model"), dict):
            raise ValueError("the study has no [model] table; use models.<label|index>.<setting>")
        table["model"][rest] = value
    elif head in ("models", "optimizers") and "." in rest:
        selector, _, setting = rest.rpartition(".")
        _array_item(table, head, selector)[setting] = value
    else:
        raise ValueError(f"not a key of a study file; allowed: {list(OVERRIDE_KEYS)}")


def _array_item(table: dict[str, Any], key: str, selector: str) -> dict[str, Any]:
    """The table of `[[key]]` whose label (else name) is `selector`, or at index `selector`."""
    items = table.get(key)
    if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
        raise ValueError(f"the study has no [[{key}]] array of tables")
    labels = [t.get("label", t.get("name")) for t in items]
    if selector.isdigit() and int(selector) < len(items):
        return items[int(selector)]
    if selector in labels:
        return items[labels.index(selector)]
    raise ValueError(
        f"[[{key}]] has no table labelled {selector!r}; labels: {labels}, "
        f"or an index 0..{len(items) - 1}"
    )


def study_from_dict(table: dict[str, Any]) -> StudyConfig:
    """Map a parsed study file onto a `StudyConfig` (structure only, no registry look-ups).

    Raises:
        ValueError: naming the dotted path of the first faulty key.
    """
    unknown = sorted(set(table) - set(STUDY_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; allowed: {list(STUDY_KEYS)}")
    for key, what in REQUIRED_KEYS.items():
        if key not in table:
            raise ValueError(f"{key} is required: {what}")

    return StudyConfig(
        name=table["name"],
        tasks=table["tasks"],
        seeds=table["seeds"],
        budget=table["budget"],
        models=_models_from(table),
        optimizers=tuple(
            _build(OptimizerConfig, f"optimizers[{i}]", _split_named(t, f"optimizers[{i}]"))
            for i, t in enumerate(_array_of_tables(table, "optimizers"))
        ),
        evaluation=_build(EvaluationConfig, "evaluation", _table(table, "evaluation")),
        execution=_build(ExecutionConfig, "execution", _table(table, "execution")),
    )


def _models_from(table: dict[str, Any]) -> tuple[ModelConfig, ...]:
    """The models of `[model]` or of `[[models]]`, exactly one of which must be present."""
    if ("model" in table) == ("models" in table):
        raise ValueError("give exactly one of a [model] table or a [[models]] array of tables")
    if "model" in table:
        model = table["model"]
        if not isinstance(model, dict):
            raise ValueError(f"model must be a table ([model]), got {model!r}")
        return (_build(ModelConfig, "model", _split_named(model, "model")),)
    return tuple(
        _build(ModelConfig, f"models[{i}]", _split_named(t, f"models[{i}]"))
        for i, t in enumerate(_array_of_tables(table, "models"))
    )


def _split_named(table: dict[str, Any], path: str) -> dict[str, Any]:
    """`name` and `label` of a model or optimizer table; every other key is a setting."""
    if "name" not in table:
        raise ValueError(f"{path}.name is required (a registry name)")
    settings = {k: v for k, v in table.items() if k not in ("name", "label")}
    return {"name": table["name"], "label": table.get("label"), "settings": settings}


def _array_of_tables(table: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = table[key]
    if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
        raise ValueError(f"{key} must be an array of tables ([[{key}]]), got {items!r}")
    if not items:
        raise ValueError(f"{key} must hold at least one table, got []")
    return items


def _table(table: dict[str, Any], key: str) -> dict[str, Any]:
    """An optional sub-table with a fixed set of keys (`[evaluation]`, `[execution]`)."""
    sub = table.get(key, {})
    if not isinstance(sub, dict):
        raise ValueError(f"{key} must be a table ([{key}]), got {sub!r}")
    return sub


def _build(cls: type, path: str, values: dict[str, Any]):
    """Construct `cls`, prefixing its errors (which start with a field name) by `path`."""
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed: {allowed}")
    try:
        return cls(**values)
    except ValueError as e:
        raise ValueError(f"{path}.{e}") from None


# Names the registries must know


def validate_names(config: StudyConfig) -> None:
    """Check that every task, model and optimizer (and their settings) exists.

    Each model is built once for a 4-input, 2-action network and each optimizer made once, so a
    misspelled setting fails here and not hours into a study.

    Raises:
        ValueError: naming the dotted path, the value and what is allowed.
    """
    from synevo.evaluation import check_task
    from synevo.models import build_model
    from synevo.optimizers import make_optimizer

    for i, task in enumerate(config.tasks):
        _named(f"tasks[{i}] = {task!r}", check_task, task)
    for i, model in enumerate(config.models):
        path = "model" if len(config.models) == 1 else f"models[{i}]"
        settings = dict(model.settings)
        built = _named(f"{path} ({model.name})", build_model, model.name, 4, 2, **settings)
        _check_agents(config.evaluation, built, f"{path} ({model.name})")
    for i, optimizer in enumerate(config.optimizers):
        settings = dict(optimizer.settings)
        _named(f"optimizers[{i}] ({optimizer.label})", make_optimizer, optimizer.name, settings)


def _check_agents(evaluation: EvaluationConfig, model: Any, path: str) -> None:
    """Agents need a model that samples networks; the free-assembly control needs SynaptoGen.

    Raises:
        ValueError: naming the field, the model and what is allowed.
    """
    from synevo.models import MODELS, model_names
    from synevo.study.agents import can_free_assemble, can_sample

    if evaluation.agents > 0 and not can_sample(model):
        samplers = [name for name in model_names() if can_sample(MODELS[name])]
        raise ValueError(
            f"evaluation.agents = {evaluation.agents} samples networks from the trained genome, "
            f"but {path} is deterministic; models that sample: {samplers}; "
            f"otherwise set evaluation.agents = 0"
        )
    if evaluation.free_assembly > 0 and not can_free_assemble(model):
        raise ValueError(
            f"evaluation.free_assembly = {evaluation.free_assembly} needs a SynaptoGen model, "
            f"but {path} is not; allowed: ['synaptogen'], otherwise set "
            f"evaluation.free_assembly = 0"
        )


def _named(path: str, fn, *args: Any, **kwargs: Any) -> Any:
    """Call `fn`, turning its ValueError or TypeError into a ValueError prefixed by `path`."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: {e}") from None


def warn_suspicious(config: StudyConfig) -> None:
    """Log a warning for valid but probably unintended settings (after any overrides)."""
    if config.evaluation.eval_every > config.budget:
        logger.warning(
            "evaluation.eval_every = %d exceeds budget = %d: only the final evaluation will run",
            config.evaluation.eval_every,
            config.budget,
        )
