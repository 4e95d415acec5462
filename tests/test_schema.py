"""``archc schema``: the JSON Schema editors use agrees with the loader.

It validates every good spec, refuses the bad specs the loader refuses for
structural reasons, and never refuses a document the loader accepts (checked
on the bundled specs and on mutated ones from ``tests/fuzzing.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, get_args

import jsonschema
import pytest
import yaml
from fuzzing import Case, cases
from hypothesis import HealthCheck, given, settings

import archcompile
from archcompile.errors import ArchcError
from archcompile.layers import LAYER_KINDS, Activation, LayerSpec, _float_field
from archcompile.spec.jsonschema import schema_text, spec_schema

ROOT = Path(__file__).resolve().parent.parent
GOOD = sorted((ROOT / "specs").glob("**/*.yaml")) + sorted((ROOT / "tests/specs").glob("*.yaml"))
#: bad specs the loader refuses for their structure (kind, argument, type,
#: range, keys); the others need the shapes, the scope of $names or the YAML
STRUCTURAL = """boolean_channels define_not_a_mapping float_channels infinity
    integer_too_large negative_channels negative_kernel only_comments string_channels
    unknown_argument unknown_key unknown_layer unknown_layer_bare yaml_list yaml_scalar
    zero_channels zero_kernel zero_stride norm_unknown norm_unknown_argument
    norm_group_without_groups norm_eps_out_of_range_in_defaults upsample_float_scale
    unknown_layer_reshape unknown_layer_torch_spelling""".split()
#: structural mistakes with no file in tests/bad_specs
HEADER = "archc: 1\nname: Net\ninput: [3, 8, 8]\n"
INLINE = {
    "input_of_two": "archc: 1\nname: Net\ninput: [3, 8]\nblocks: {b: [relu]}\n",
    "input_of_text": "archc: 1\nname: Net\ninput: 3x8x8\nblocks: {b: [relu]}\n",
    "no_name": "archc: 1\ninput: [3, 8, 8]\nblocks: {b: [relu]}\n",
    "no_blocks": HEADER,
    "conv_without_kernel": HEADER + "blocks: {b: [{conv: {out: 8}}]}\n",
    "bare_linear": HEADER + "blocks: {b: [flatten, linear]}\n",
    "activation_unknown": HEADER + "blocks: {b: [{conv: {out: 8, kernel: 1, activation: ReLU}}]}\n",
    "padding_word": HEADER + "blocks: {b: [{conv: {out: 8, kernel: 3, padding: full}}]}\n",
    "dropout_one": HEADER + "blocks: {b: [{dropout: {p: 1}}]}\n",
    "pair_of_three": HEADER + "blocks: {b: [{maxpool: {kernel: [2, 2, 2]}}]}\n",
    "two_kinds": HEADER + "blocks: {b: [{relu: null, gelu: null}]}\n",
    "repeat_named": HEADER + "blocks: {b: [{repeat: {times: 2, layers: [relu]}, name: r}]}\n",
    "misspelt_argument": HEADER + "blocks: {b: [{conv: {out: 8, kernel: 3, strid: 2}}]}\n",
    "relu_with_argument": HEADER + "blocks: {b: [{relu: {inplace: true}}]}\n",
    "unknown_default": HEADER + "defaults: {conv: {kernal: 3}}\nblocks: {b: [relu]}\n",
    "archc_true": "archc: true\nname: Net\ninput: [3, 8, 8]\nblocks: {b: [relu]}\n",
    "archc_two": "archc: 2\nname: Net\ninput: [3, 8, 8]\nblocks: {b: [relu]}\n",
}
#: accepted by the loader although they look incomplete: the schema must agree
ACCEPTED = {
    "defaults_give_kernel": HEADER
    + "defaults: {conv: {kernel: 3, padding: 1}}\nblocks: {b: [{conv: {out: 8}}]}\n",
    "defaults_give_all": HEADER + "defaults: {linear: {out: 4}}\nblocks: {b: [flatten, linear]}\n",
    "define_call_mapping": HEADER
    + "define:\n  u: {params: [c], layers: [{conv: {out: $c, kernel: 1}}]}\n"
    "blocks: {b: [{u: {c: 4}, name: u1}]}\n",
    "unnamed": HEADER + "blocks: {b: [{relu: null, name: null}]}\n",
    "pair_of_refs": "archc: 1\nname: Net\ninput: [3, 8, 8]\nparams: {k: 3}\n"
    "blocks: {b: [{conv: {out: 4, kernel: [$k, 1], padding: same}}]}\n",
}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(spec_schema())


def _loads(text: str, base_dir: Path = ROOT) -> bool:
    try:
        archcompile.load_spec_text(text, "spec.yaml", base_dir=base_dir)
    except ArchcError:
        return False
    return True


def test_the_schema_is_valid_draft_2020_12() -> None:
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_committed_schema_is_what_archc_schema_prints(cli) -> None:
    """schema/archc.schema.json is what editors read: re-record it with `make schema`."""
    printed = cli("schema").out
    assert printed == schema_text()
    assert (ROOT / "schema/archc.schema.json").read_text("utf-8") == printed, "run `make schema`"


def test_schema_writes_a_file(cli, tmp_path) -> None:
    target = tmp_path / "s.json"
    assert cli("schema", "-o", str(target)).code == 0
    assert json.loads(target.read_text("utf-8")) == spec_schema()


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_good_spec_validates(path: Path, validator) -> None:
    document = yaml.safe_load(path.read_text("utf-8"))
    assert [e.message for e in validator.iter_errors(document)] == []


@pytest.mark.parametrize("path", GOOD[:3], ids=lambda p: p.name)
def test_bundled_specs_name_the_schema_on_their_first_line(path: Path) -> None:
    first = path.read_text("utf-8").splitlines()[0]
    target = first.removeprefix("# yaml-language-server: $schema=")
    assert (path.parent / target).resolve() == ROOT / "schema/archc.schema.json"


@pytest.mark.parametrize("name", STRUCTURAL)
def test_structural_bad_specs_are_refused(name: str, validator) -> None:
    text = (ROOT / "tests/bad_specs" / f"{name}.yaml").read_text("utf-8")
    assert not _loads(text)
    assert not validator.is_valid(yaml.safe_load(text))


@pytest.mark.parametrize("name", INLINE)
def test_structural_mistakes_are_refused(name: str, validator) -> None:
    assert not _loads(INLINE[name])
    assert not validator.is_valid(yaml.safe_load(INLINE[name]))


@pytest.mark.parametrize("name", ACCEPTED)
def test_what_the_loader_accepts_validates(name: str, validator) -> None:
    assert _loads(ACCEPTED[name])
    assert [e.message for e in validator.iter_errors(yaml.safe_load(ACCEPTED[name]))] == []


def test_no_bad_spec_the_schema_refuses_is_accepted_by_the_loader(validator) -> None:
    refused = []
    for path in sorted((ROOT / "tests/bad_specs").glob("*.yaml")):
        text = path.read_text("utf-8")
        try:
            document = yaml.safe_load(text)
        except (yaml.YAMLError, ValueError):
            continue  # not YAML: nothing for a schema to say
        if not validator.is_valid(document):
            refused.append(path.stem)
            assert not _loads(text), path.name
    assert set(STRUCTURAL) <= set(refused)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_the_schema_accepts_every_mutated_spec_the_loader_accepts(case: Case, validator) -> None:
    if not _loads(case.text, case.seed.base_dir):
        return
    document = yaml.safe_load(case.text)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == [], case.describe()


def test_every_layer_kind_has_its_arguments_in_the_schema() -> None:
    """A new kind appears in the schema with no edit to the generator."""
    defs = spec_schema()["$defs"]
    for kind, model in LAYER_KINDS.items():
        fields = set(model.model_fields) - {"kind"}
        assert set(defs[f"layer.{kind}"]["properties"]) == fields, kind
        assert defs[f"layer.{kind}"]["description"] == model.__doc__
    kinds_in_items = {
        key for alternative in defs["item"]["anyOf"] for key in alternative.get("required", [])
    }
    assert set(LAYER_KINDS) <= kinds_in_items


def test_fields_carry_types_ranges_and_descriptions() -> None:
    conv = spec_schema()["$defs"]["layer.conv"]["properties"]
    out = conv["out"]["anyOf"][0]
    assert (out["type"], out["minimum"], out["maximum"]) == ("integer", 1, 2**31 - 1)
    assert "channel count" in conv["out"]["description"]
    assert {"$ref": "#/$defs/ref"} in conv["out"]["anyOf"]
    activation = conv["activation"]["anyOf"][0]["anyOf"][0]
    assert activation["enum"] == list(get_args(Activation))
    norm = json.dumps(conv["norm"])  # 'batch', {batch: {eps, momentum}}, {group: {groups, eps}}
    assert '"const": "batch"' in norm and '"momentum"' in norm and '"groups"' in norm
    padding = json.dumps(conv["padding"])
    assert '"same"' in padding and '"valid"' in padding
    dropout = spec_schema()["$defs"]["layer.dropout"]["properties"]["p"]["anyOf"][0]
    assert (dropout["minimum"], dropout["exclusiveMaximum"]) == (0.0, 1.0)


def test_a_new_layer_kind_appears_with_no_schema_edit(monkeypatch, validator) -> None:
    class Scale(LayerSpec):
        """Multiplies by a constant."""

        kind: Literal["scale"] = "scale"
        factor: Annotated[float, _float_field(0.0, 10.0, "factor")] = 1.0

    monkeypatch.setitem(LAYER_KINDS, "scale", Scale)
    schema = spec_schema()
    factor = schema["$defs"]["layer.scale"]["properties"]["factor"]
    assert factor["anyOf"][0]["maximum"] == 10.0
    check = jsonschema.Draft202012Validator(schema)
    assert check.is_valid(yaml.safe_load(HEADER + "blocks: {b: [{scale: {factor: 2}}]}"))
    assert not check.is_valid(yaml.safe_load(HEADER + "blocks: {b: [{scale: {factor: 11}}]}"))
    assert not validator.is_valid(yaml.safe_load(HEADER + "blocks: {b: [scale]}"))
