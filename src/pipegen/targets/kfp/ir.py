"""With --ir: the pipeline module compiled by kfp itself into IR YAML (the only time pipegen imports kfp)."""

from __future__ import annotations

from pipegen.emit import Output
from pipegen.targets.kfp.ir_share import shared_ir


def compile_ir(module: Output) -> Output:
    """Compile a generated pipeline module with the kfp compiler into IR YAML, its tasks sharing components."""
    import importlib.util
    import tempfile
    from pathlib import Path

    from kfp import compiler  # type: ignore[import-not-found,unused-ignore]

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "pipeline_module.py"
        source.write_text(module.text, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("pipegen_compiled_pipeline", source)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        target = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(loaded.pipeline, package_path=str(target))
        return Output(module.path[: -len(".py")] + ".yaml", shared_ir(target.read_text(encoding="utf-8")))
