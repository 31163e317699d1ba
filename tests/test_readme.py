"""README.md stays a user's guide: small, its two commands the ones CI runs, its links and headline
numbers backed by what reports/ holds. AutoLink's lab notebook is reports/autolink/README.md."""
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
MAX_BYTES = 12 * 1024


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_readme_is_at_most_12_kb():
    size = len(README.encode())
    assert size <= MAX_BYTES, f"README.md is {size} bytes (> {MAX_BYTES}): move details to reports/<method>/README.md"


def test_the_two_commands_are_what_ci_runs():
    section = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n\s*```", section, re.S)
    assert len(commands) == 2, commands
    ci = (REPO / ".ci" / "run").read_text()
    ci = _flat(re.sub(r"\\\n", " ", ci).replace(" -q ", " "))
    for cmd in commands:
        assert _flat(cmd) in ci, f"README command not in .ci/run: {cmd}"


def test_relative_links_exist():
    links = [t for t in re.findall(r"\]\(([^)\s]+)\)", README) if not re.match(r"[a-z]+:", t)]
    assert links, "the methods table links each method's page"
    missing = [t for t in links if not (REPO / t.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_autolink_headline_is_the_benchmark_row():
    """The methods table's MTFL row quotes reports/benchmarks.json (K = 10, headline fit, NME % IOD)."""
    row = next(line for line in README.splitlines() if line.startswith("| [AutoLink]") and "MTFL" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    k, metric, value = cells[2], cells[3], float(cells[4].split()[0])
    rows = json.loads((REPO / "reports" / "benchmarks.json").read_text())
    bench = [r["value"] for r in rows if r["dataset"] == "mtfl" and r["method"] == "autolink" and r["kind"] == "trained"
             and r["K"] == int(k) and r["metric"] == "nme" and not r["few_shot"]]
    assert metric == "NME % IOD" and len(bench) == 1 and round(bench[0], 2) == value, (row, bench)
    assert "--profile cpu --only mtfl --ks 10" in row


def test_every_method_has_a_row_and_autolink_a_page():
    for name in ("AutoLink", "self-training", "part-based", "pose / appearance / background", "contrastive"):
        assert any(line.startswith("|") and name in line for line in README.splitlines()), name
    page = (REPO / "reports" / "autolink" / "README.md").read_text()
    assert "python -m lmkcore.bench --profile cpu --only mtfl" in page and "lmkcore.experiments.sweep" in page
