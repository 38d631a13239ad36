"""The house stays in order: the import graph read from the code (module-level imports and imports
inside functions alike) keeps the layers of docs/architecture.md.

- apps import only downwards: core <- crm <- segments <- campaigns <- console;
- no product module imports the development tooling (devstack);
- no import cycle among the product's modules (tests, migrations and bench are not product).

The checker is tried on a small synthetic tree first, so a checker that has gone blind fails too.
"""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("core", "crm", "segments", "campaigns", "console")  # lowest first
TOOLING = "devstack"
PACKAGES = (*LAYERS, TOOLING, "config")
SKIPPED_DIRECTORIES = {"migrations", "__pycache__"}


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    modules = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            if SKIPPED_DIRECTORIES.intersection(path.relative_to(root).parts):
                continue
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the product modules it imports, wherever in the module the import stands."""
    modules = _modules(root, packages)
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                # `from package import submodule` imports the submodule, not the package's face.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved and resolved != name:
                    edges[name].add(resolved)
    return edges


def _app(module: str) -> str:
    return module.split(".")[0]


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    rank = {app: index for index, app in enumerate(LAYERS)}
    return sorted(
        f"{source} -> {target}"
        for source, targets in edges.items()
        for target in targets
        if _app(source) in rank and _app(target) in rank and rank[_app(source)] < rank[_app(target)]
    )


def tooling_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} -> {target}"
        for source, targets in edges.items()
        for target in targets
        if _app(source) in LAYERS and _app(target) == TOOLING
    )


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    nodes = set(edges) | {target for targets in edges.values() for target in targets}
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges.get(successor, ())))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
    return cycles


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_sees_an_upward_import_a_tooling_import_and_a_cycle(tmp_path) -> None:
    _write(
        tmp_path,
        {
            "core/__init__.py": "",
            "crm/__init__.py": "",
            "crm/services/__init__.py": "",
            "crm/services/a.py": "def f():\n    from ..services import b\n",
            "crm/services/b.py": "from crm.services.a import f\n",
            "crm/api.py": "def g():\n    import segments.selectors\n",
            "crm/migrations/0001.py": "import campaigns.models\n",
            "segments/__init__.py": "",
            "segments/selectors.py": "from crm import api\nfrom devstack.demo import x\n",
            "devstack/__init__.py": "",
            "devstack/demo.py": "import campaigns\n",
            "campaigns/__init__.py": "",
        },
    )
    edges = import_graph(tmp_path, ("core", "crm", "segments", "campaigns", "devstack"))
    assert upward_imports(edges) == ["crm.api -> segments.selectors"]
    assert tooling_imports(edges) == ["segments.selectors -> devstack.demo"]
    assert import_cycles(edges) == [
        ["crm.api", "segments.selectors"],
        ["crm.services.a", "crm.services.b"],
    ]


def test_apps_import_only_downwards() -> None:
    assert upward_imports(import_graph(ROOT)) == []


def test_no_product_module_imports_the_development_tooling() -> None:
    assert tooling_imports(import_graph(ROOT)) == []


def test_no_import_cycle_among_the_product_modules() -> None:
    assert import_cycles(import_graph(ROOT)) == []
