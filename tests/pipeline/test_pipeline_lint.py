"""templates/pipeline.yaml is cfn-lint clean with the project's rules, at 2 and 120 services."""
from __future__ import annotations

from generator import lint, render
from pipeline import stack as pipeline_stack


def test_committed_pipeline_template_is_clean(repo_root):
    findings = lint.lint_templates([repo_root / "templates/pipeline.yaml"])
    assert findings == []


def test_120_service_pipelines_are_clean(big_topologies, tmp_path):
    paths = []
    for shape, topology in big_topologies.items():
        path = tmp_path / f"pipeline-{shape}.yaml"
        path.write_bytes(render.template_bytes(pipeline_stack.build(topology)))
        paths.append(path)
    assert lint.lint_templates(paths) == []


def test_lint_does_catch_a_broken_pipeline(repo_root, tmp_path):
    """Guards the two tests above against a linter that never reports anything."""
    text = (repo_root / "templates/pipeline.yaml").read_text()
    broken = tmp_path / "pipeline.yaml"
    broken.write_text(text.replace("PipelineType: V2", "PipelineType: V9", 1))
    assert lint.lint_templates([broken])
