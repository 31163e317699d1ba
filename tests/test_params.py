"""User-facing parameters: notebook parameter cells as papermill fills them, and name=value command-line fields."""
import nbformat
import pytest
from hypothesis import given, strategies as st

from lmkcore.methods.autolink import AutoLinkConfig
from lmkcore.params import ParameterError, checked, convert, field_value

SPELLINGS = {"true": True, "True": True, "TRUE": True, " tRuE ": True, True: True,
             "false": False, "False": False, "FALSE": False, False: False}


@pytest.mark.parametrize("text,value", SPELLINGS.items())
def test_booleans_accept_only_the_documented_spellings(text, value):
    assert convert("resume", text, bool) is value


@pytest.mark.parametrize("bad", ["flase", "", "2", 2, 0.5, None, "yes", "no", "1", "0", 1, 0, "on"])
def test_any_other_boolean_is_an_error_naming_the_parameter(bad):
    with pytest.raises(ParameterError, match=r"parameter resume=.*expected a boolean"):
        convert("resume", bad, bool)


@given(st.integers(-10**9, 10**9))
def test_integers_round_trip_from_text_and_from_integral_floats(n):
    assert convert("steps", str(n), int) == n == convert("steps", float(n), int)


@pytest.mark.parametrize("bad,kind", [("abc", int), (1.5, int), (True, int), ("x1", float), (True, float), ([], str)])
def test_values_of_the_wrong_type_are_errors(bad, kind):
    with pytest.raises(ParameterError, match="parameter p="):
        convert("p", bad, kind)


def test_a_notebook_namespace_is_checked_against_its_declared_parameters():
    ns = {"__annotations__": {"n_parts": int, "resume": bool, "run_name": str, "lr": float},
          "n_parts": "4", "resume": "false", "run_name": 2024, "lr": 1, "In": [], "_i1": "", "checked": checked}
    assert checked(ns) == {"n_parts": 4, "resume": False, "run_name": "2024", "lr": 1.0}
    with pytest.raises(ParameterError, match=r"no parameter 'n_part' \(did you mean n_parts\?\)"):
        checked({**ns, "n_part": 4})


def test_command_line_fields_use_the_same_rules():
    assert field_value(AutoLinkConfig, "flip", "False") is False  # bool("False") would be True
    assert field_value(AutoLinkConfig, "n_parts", "8") == 8
    with pytest.raises(ParameterError, match=r"AutoLinkConfig has no parameter 'n_part' \(did you mean n_parts"):
        field_value(AutoLinkConfig, "n_part", "4")
    with pytest.raises(ParameterError, match=r"parameter n_parts='abc': expected an integer"):
        field_value(AutoLinkConfig, "n_parts", "abc")


@pytest.mark.parametrize("field,value", [("n_parts", -3), ("resolution", 0), ("missing", 1.0)])
def test_ranges_are_the_configs_own(field, value):
    with pytest.raises(ValueError, match=rf"AutoLinkConfig\.{field} must"):
        AutoLinkConfig(**{field: value})


def test_a_papermill_run_with_a_misspelled_parameter_fails_naming_it(tmp_path):
    """Through a real kernel, as papermill runs a notebook: the parameters cell's annotations are what is declared."""
    papermill = pytest.importorskip("papermill")
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell("n_parts: int = 10\nresume: bool = False", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("from lmkcore.params import checked\n\nglobals().update(checked(globals()))"),
                nbformat.v4.new_code_cell("assert resume is False and n_parts == 4, (resume, n_parts)")]
    src = tmp_path / "nb.ipynb"
    nbformat.write(nb, src)
    papermill.execute_notebook(str(src), str(tmp_path / "ok.ipynb"), parameters={"n_parts": 4, "resume": "false"},
                               kernel_name="python3", progress_bar=False)
    with pytest.raises(papermill.PapermillExecutionError, match="did you mean n_parts"):
        papermill.execute_notebook(str(src), str(tmp_path / "bad.ipynb"), parameters={"n_part": 4},
                                   kernel_name="python3", progress_bar=False)
