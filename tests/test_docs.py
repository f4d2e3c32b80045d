"""Docs that cannot drift: README's demo table, and the sizes config docstrings state.

README's demo table is generated from a demo run (`experiments.readme_table`); runs/ is not
in the repository, so the table is checked here against what the demo *would* build: its
configs in the demo's order, each model's parameter count (the registered builder evaluated
abstractly with ``jax.eval_shape``: shapes only, no parameter computed, no training), and the
model and data labels derived from the config. Only the measured columns (bits/dim, sampling
time) come from the run alone.

Config docstrings state sizes in one convention that can be checked mechanically: a
double-backquoted ``section.field=value`` (the syntax of a ``--config.section.field=value``
override, without the ``--config.`` prefix, which marks an example override instead), e.g.
``model.num_couplings=6``. Every such statement in a config module's docstring must equal
``get_config()``'s value. Numbers written in prose (``8x8 digits``, measured timings) are not
checked: a size belongs in the convention.
"""
import ast
import glob
import json
import math
import os
import re

import jax
import pytest
from flax import nnx

from experiments import readme_table, registry, schema
from experiments.config_io import get_value, load_config
from experiments.demo import DEMO_CONFIGS
from jaxgen.data import load_dataset
from jaxgen.data.preprocessing import make_preprocessing
from jaxgen.training import count_params

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = sorted(path for path in glob.glob(os.path.join(REPO, "experiments", "configs",
                                                             "*.py"))
                      if not path.endswith("__init__.py"))
_SPAN = re.compile(r"``([^`]+)``")
_STATEMENT = re.compile(r"(seed|(?:data|model|train|optim|sampler|eval)(?:\.\w+)+)=(.+)")


# --- README's demo table -----------------------------------------------------------------

def _readme_table_rows() -> list[dict]:
    with open(readme_table.README) as f:
        text = f.read()
    assert text.count(readme_table.START) == 1 and text.count(readme_table.END) == 1
    block = text.split(readme_table.START)[1].split(readme_table.END)[0]
    header, rule = readme_table.HEADER.splitlines()
    lines = block.strip().splitlines()
    assert header in lines and lines[lines.index(header) + 1] == rule, block
    keys = [cell.strip() for cell in header.strip("|").split("|")]
    rows = []
    for line in lines[lines.index(header) + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(keys, (cell.strip() for cell in line.strip().strip("|").split("|")))))
    return rows


def _abstract_build(name: str) -> dict:
    """What the demo's run of config ``name`` builds, without computing any parameter."""
    settings = schema.validate(load_config(name))
    dataset = load_dataset(settings.data)
    pre = make_preprocessing(dataset, settings.data["dequantize"], jax.random.key(settings.seed))
    spec = registry.get_spec(settings.model_name)
    data = registry.ModelData(dataset.event_shape, pre.model_num_levels, pre.init_data, pre,
                              dataset.num_classes, dataset.train_labels)
    params = jax.eval_shape(lambda: nnx.state(
        spec.build_fn(settings.model, data, nnx.Rngs(settings.seed)), nnx.Param))
    results = {"config": settings.config, "dataset": dataset.name,
               "num_levels": dataset.num_levels, "dequantize": pre.dequantize}
    return {"num_params": count_params(params), "model": readme_table.model_label(results),
            "data": readme_table.data_label(results)}


@pytest.fixture(scope="module")
def demo_builds() -> dict[str, dict]:
    return {name: _abstract_build(name) for name in DEMO_CONFIGS}


def test_readme_table_lists_the_demo_configs_in_order():
    assert [row["config"].strip("`") for row in _readme_table_rows()] == list(DEMO_CONFIGS)


def test_readme_table_parameters_and_labels_match_the_demo_models(demo_builds):
    for row in _readme_table_rows():
        built = demo_builds[row["config"].strip("`")]
        assert int(row["parameters"].replace(",", "")) == built["num_params"], row
        assert row["model"] == built["model"], row
        assert row["data"] == built["data"], row


def test_abstract_parameter_count_equals_the_built_models():
    """The shape-only count is the count of a real build (two cheap demo models)."""
    from experiments.build import build_experiment

    for name in ("factorized_categorical_digits", "rbm_digits"):
        assert (count_params(build_experiment(load_config(name)).model)
                == _abstract_build(name)["num_params"])


def test_readme_says_what_data_the_demo_uses():
    with open(readme_table.README) as f:
        text = f.read()
    datasets = {load_config(name).data.name for name in DEMO_CONFIGS}
    assert datasets == {"digits"}, datasets  # the sentence below must change with the demo
    assert "the demo trains its models on scikit-learn's 8x8 digits only" in " ".join(text.split())


# --- experiments.readme_table on a fake demo directory -----------------------------------

def _fake_demo(tmp_path, num_params=(1088, 60544)) -> str:
    """A demo directory as `experiments.demo` writes it, two runs, made-up numbers."""
    demo = tmp_path / "demo"
    runs = {
        "factorized_categorical_digits": dict(
            model={"name": "factorized_categorical"}, dataset="digits", dequantize="none"),
        "glow_digits": dict(model={"name": "glow", "num_scales": 2, "num_steps": 8},
                            dataset="digits", dequantize="uniform"),
    }
    env = {"device_count": 1, "device_kind": "cpu", "versions": {"jax": "0.0"},
           "git_commit": "0123456789abcdef", "git_dirty": False,
           "timestamp": "2026-01-02T03:04:05+00:00"}
    for (name, run), params in zip(runs.items(), num_params):
        (demo / name).mkdir(parents=True)
        results = {"config": {"model": run["model"]}, "dataset": run["dataset"],
                   "dequantize": run["dequantize"], "num_levels": 17, "num_params": params,
                   "test_bits_per_dim": 2.1742, "sample_time_s": 0.0123, "num_samples": 100,
                   "run_wall_s": 60.0, "environment": env}
        (demo / name / "results.json").write_text(json.dumps(results))
    (demo / "results.json").write_text(json.dumps({"rows": [{"config": n} for n in runs]}))
    return str(demo)


def test_readme_table_renders_the_runs(tmp_path):
    block = readme_table.render_table(*readme_table.load_demo(_fake_demo(tmp_path)))
    lines = block.splitlines()
    assert lines[1:3] == readme_table.HEADER.splitlines()
    assert lines[3] == ("| factorized categorical | `factorized_categorical_digits` | "
                        "digits (17 levels) | 2.174 | 1,088 | 12 |")
    assert lines[4] == ("| Glow (2 levels x 8 steps) | `glow_digits` | uniformly dequantized "
                        "digits (17 levels) | 2.174 | 60,544 | 12 |")
    assert "1 x cpu" in block and "commit 0123456789ab," in block and "2 minutes" in block
    conditional = {"config": {"data": {"conditional": True}}, "dataset": "digits",
                   "num_levels": 17}
    assert readme_table.data_label(conditional) == "digits (17 levels), given the class"


def test_readme_table_check_mode(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{readme_table.START}\nold table\n{readme_table.END}\noutro\n")
    demo = _fake_demo(tmp_path)
    args = [demo, "--readme", str(readme)]
    assert readme_table.main(args + ["--check"]) == 1  # stale
    assert readme_table.main(args) == 0  # rewrite
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{readme_table.END}\noutro\n")
    assert "`glow_digits`" in text and "old table" not in text
    assert readme_table.main(args + ["--check"]) == 0  # fresh
    assert readme_table.main([str(tmp_path / "no_demo"), "--readme", str(readme)]) == 2
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="demo-table:start"):
        readme_table.main(args)


# --- sizes stated in config docstrings -----------------------------------------------------

def docstring_statements(docstring: str) -> list[tuple[str, object]]:
    """The ``section.field=value`` statements of a docstring, values as Python literals
    (an unquoted word such as ``optim.name=adamw`` is a string)."""
    statements = []
    for span in _SPAN.findall(docstring or ""):
        match = _STATEMENT.fullmatch(span.strip())
        if match:
            text = match.group(2).strip()
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text
            statements.append((match.group(1), value))
    return statements


def _normalized(value):
    if isinstance(value, (list, tuple)):
        return tuple(_normalized(v) for v in value)
    return value


def _same(stated, actual) -> bool:
    stated, actual = _normalized(stated), _normalized(actual)
    numbers = (int, float)
    if (isinstance(stated, numbers) and isinstance(actual, numbers)
            and not isinstance(stated, bool) and not isinstance(actual, bool)):
        return math.isclose(stated, actual, rel_tol=1e-12)
    return stated == actual and type(stated) is type(actual)


def wrong_statements(docstring: str, config) -> list[str]:
    """Statements of ``docstring`` that ``config`` contradicts (or lacks), as messages."""
    wrong = []
    for key, stated in docstring_statements(docstring):
        try:
            actual = get_value(config, key)
        except (KeyError, AttributeError):
            wrong.append(f"{key}: stated {stated!r}, but the config has no such field")
            continue
        if not _same(stated, actual):
            wrong.append(f"{key}: stated {stated!r}, config has {actual!r}")
    return wrong


def _module_docstring(path: str) -> str | None:
    with open(path) as f:
        return ast.get_docstring(ast.parse(f.read()))


@pytest.mark.parametrize("path", CONFIG_FILES, ids=os.path.basename)
def test_config_docstring_sizes_match_get_config(path):
    docstring = _module_docstring(path)
    if not docstring_statements(docstring):
        return
    name = os.path.basename(path)[:-3]
    config = load_config(name)  # a module with statements must have a get_config()
    assert not wrong_statements(docstring, config), wrong_statements(docstring, config)


def test_docstring_convention_is_in_use():
    """The check above is not vacuous: the sized configs state their sizes."""
    stated = {os.path.basename(p)[:-3]: dict(docstring_statements(_module_docstring(p)))
              for p in CONFIG_FILES}
    assert {"model.num_couplings", "model.hidden_features"} <= set(stated["realnvp_vector_digits"])
    assert {"model.num_scales", "model.num_steps"} <= set(stated["glow_digits"])
    assert sum(len(s) for s in stated.values()) >= 40


def test_wrong_docstring_statement_is_reported():
    config = load_config("realnvp_vector_digits")
    docstring = ("Then ``model.num_couplings=8`` couplings of ``model.hidden_features=256``; "
                 "``model.num_hidden_layers=2``, ``optim.name=adam``, ``model.no_such=1``, "
                 "and an example override ``--config.model.num_couplings=3``.")
    assert wrong_statements(docstring, config) == [
        "model.num_couplings: stated 8, config has 6",
        "model.hidden_features: stated 256, config has 64",
        "model.no_such: stated 1, but the config has no such field",
    ]
