"""``rlkit <command> --help``: the config groups and their choices, then every key with its value and meaning."""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import os
import sys
from typing import Any

from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from rlkit.config import check_known_keys, group_choices, hydra_configs
from rlkit.errors import DEBUG_ENV, user_errors


@functools.cache
def _class_bodies(module: str) -> dict[str, list[ast.stmt]]:
    """The body of each class of a module by its qualified name, from one parse of the module's source."""
    try:
        tree = ast.parse(inspect.getsource(sys.modules[module]))
    except (KeyError, OSError, TypeError):
        return {}
    bodies: dict[str, list[ast.stmt]] = {}

    def visit(nodes: list[ast.stmt], prefix: str) -> None:
        for node in nodes:
            if isinstance(node, ast.ClassDef):
                bodies[prefix + node.name] = node.body
                visit(node.body, f"{prefix}{node.name}.")

    visit(tree.body, "")
    return bodies


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass, a subclass's overriding its bases'."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__[:-1]):
        body = _class_bodies(base.__module__).get(base.__qualname__)
        if body is None:
            continue
        for node, nxt in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def as_override(value: Any) -> str:
    """A value as it would be typed on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(as_override(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {as_override(v)}" for k, v in value.items()) + "}"
    return str(value)


def _describe(node: DictConfig, prefix: str, rows: list[tuple[str, str, str]]) -> None:
    """One row per leaf key of a composed config: ``key=value``, its docstring, the dotted key."""
    node_type = OmegaConf.get_type(node)
    docs = field_docs(node_type) if node_type is not None and dataclasses.is_dataclass(node_type) else {}
    for key in node:
        full = f"{prefix}{key}"
        child = node._get_node(key)
        if OmegaConf.is_missing(node, key):
            rows.append((f"{full}=???", docs.get(str(key), "") + " (required)", full))
        elif isinstance(child, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(child)):
            _describe(child, f"{full}.", rows)
        else:
            value = OmegaConf.to_container(child) if OmegaConf.is_config(child) else node[key]
            rows.append((f"{full}={as_override(value)}", docs.get(str(key), ""), full))


def print_manual(command: str, summary: str, config_name: str, overrides: list[str]) -> None:
    """Print the manual of ``rlkit <command>`` (``summary``: its one line) for the config ``overrides`` give."""
    try:
        with hydra_configs():
            cfg = compose(config_name=config_name, overrides=overrides)
            choices = group_choices(GlobalHydra.instance().config_loader())
            # Only training composes groups; eval's config has none of its own.
            groups = [g for g in choices if "/" not in g] if config_name == "train" else []
            print(f"usage: rlkit {command} [GROUP=CHOICE ...] [KEY=VALUE ...]\n\n{summary}\n")
            if groups:
                print("config groups (GROUP=CHOICE):")
                for group in sorted(groups):
                    print(f"  {group:<12} {', '.join(choices[group])}")
                print("\nmultiruns (-m; see the README's Sweeps section):")
                for group, default in (("hydra/launcher", "joblib"), ("hydra/sweeper", "basic")):
                    others = [c for c in choices[group] if c != default]
                    print(f"  {group:<14} {', '.join([f'{default} (default)', *others])}")
                print()
        with user_errors():
            check_known_keys(cfg)
        rows: list[tuple[str, str, str]] = []
        _describe(cfg, "", rows)
        top_docs = field_docs(OmegaConf.get_type(cfg))
        print("keys (KEY=VALUE), with the values the overrides above give:")
        width = min(max(len(r[0]) for r in rows), 44)
        section = ""
        for shown, doc, key in rows:
            head = key.split(".")[0] if "." in key else ""
            if head != section:
                section = head
                print(f"\n  {head}: {top_docs.get(head, '')}" if head else "\n  top level:")
            print(f"  {shown:<{width}}  {doc}")
    except Exception as e:  # composition errors: Hydra's message is the useful part
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"rlkit: error: {e}", file=sys.stderr)
        sys.exit(2)
