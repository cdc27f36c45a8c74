"""BigQuery names and constructs → DuckDB, on the syntax tree, before sqlglot writes DuckDB SQL.

Names: a BigQuery dataset is a schema of the workspace. The dataset ``hybridrec load`` put the
tables in (``movielens`` by default) is DuckDB's ``main`` schema, so ``movielens.ratings`` and
``ratings`` are the same table; any other dataset is a schema of its own. A project qualifier
is accepted and ignored. A model ``ds.m`` is ``models/m`` for the load dataset and
``models/ds.m`` for another one.

Constructs sqlglot does not carry over (measured on sqlglot 30.31 and DuckDB 2.0):

- ``fn(x).*`` (a struct's fields as columns) → ``UNNEST(fn(x))``, which DuckDB expands;
- ``FROM UNNEST(array_of_structs)`` with no alias: BigQuery makes the struct's fields columns;
  DuckDB's recursive unnest does the same;
- ``SUBSTR(s, 0, n)``: BigQuery reads position 0 as 1, DuckDB as "before the first character";
- ``ARRAY_AGG(x ORDER BY y LIMIT n)`` → ``list_slice(ARRAY_AGG(x ORDER BY y), 1, n)``;
- dataset-qualified UDF calls ``ds.fn(x)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

__all__ = ["Names", "to_duckdb"]


@dataclass(frozen=True)
class Names:
    """Where BigQuery names live in the workspace (see the module docstring)."""

    dataset: str

    def schema(self, dataset: str | None) -> str | None:
        """The DuckDB schema of ``dataset`` (None: the default one)."""
        if dataset is None or dataset == self.dataset:
            return None
        return dataset

    def model_name(self, table: exp.Table) -> str:
        """The hybridrec model name of ``MODEL [project.]dataset.name``."""
        schema = self.schema(table.db or None)
        return table.name if schema is None else f"{schema}.{table.name}"

    def table(self, table: exp.Table) -> exp.Table:
        """``table`` with the project dropped and the dataset mapped to its schema."""
        schema = self.schema(table.db or None)
        out = exp.Table(this=exp.to_identifier(table.name, quoted=True))
        if schema is not None:
            out.set("db", exp.to_identifier(schema, quoted=True))
        if table.args.get("alias") is not None:
            out.set("alias", table.args["alias"])
        return out

    def function(self, dotted: exp.Dot) -> exp.Expression | None:
        """``[project.]dataset.fn(args)`` as DuckDB's ``[schema.]fn(args)``; None when ``dotted``
        is not a qualified function call."""
        parts: list[exp.Expression] = []
        node: exp.Expression = dotted
        while isinstance(node, exp.Dot):
            parts.insert(0, node.expression)
            node = node.this
        parts.insert(0, node)
        call = parts[-1]
        if not isinstance(call, exp.Func) or len(parts) < 2:
            return None
        qualifiers = [p for p in parts[:-1] if isinstance(p, exp.Identifier | exp.Column)]
        if len(qualifiers) != len(parts) - 1:
            return None
        schema = self.schema(qualifiers[-1].name)
        if schema is None:
            return call
        return exp.Dot(this=exp.to_identifier(schema, quoted=True), expression=call)


def to_duckdb(tree: exp.Expression, names: Names) -> exp.Expression:
    """Rewrite ``tree`` (a copy) so that sqlglot's DuckDB output means what BigQuery means."""
    tree = tree.copy()
    cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            continue
        if not table.db and table.name in cte_names:
            continue
        table.replace(names.table(table))
    for dot in list(tree.find_all(exp.Dot)):
        if dot.parent is None and dot is not tree:
            continue
        fixed = names.function(dot)
        if fixed is not None:
            dot.replace(fixed)
    for dot in list(tree.find_all(exp.Dot)):
        if isinstance(dot.expression, exp.Star) and isinstance(dot.this, exp.Func | exp.Dot):
            dot.replace(exp.Unnest(expressions=[dot.this]))
    for unnest in list(tree.find_all(exp.Unnest)):
        if unnest.args.get("alias") is None and isinstance(unnest.parent, exp.From | exp.Join):
            unnest.replace(_unnest_fields(unnest))
    for agg in list(tree.find_all(exp.ArrayAgg)):
        if isinstance(agg.this, exp.Limit):
            limit = agg.this
            agg.set("this", limit.this)
            outer = agg.parent if isinstance(agg.parent, exp.IgnoreNulls) else agg
            outer.replace(
                exp.Anonymous(
                    this="list_slice",
                    expressions=[outer.copy(), exp.Literal.number(1), limit.expression],
                )
            )
    for substring in tree.find_all(exp.Substring):
        start = substring.args.get("start")
        if isinstance(start, exp.Literal) and not start.is_string and start.name == "0":
            start.replace(exp.Literal.number(1))
    return tree


def _unnest_fields(unnest: exp.Unnest) -> exp.Expression:
    """``(SELECT UNNEST(arr, recursive := true))``: an array of structs as one column per
    field, like BigQuery's ``FROM UNNEST(arr)``."""
    call = exp.Anonymous(
        this="UNNEST",
        expressions=[
            *unnest.expressions,
            exp.PropertyEQ(this=exp.to_identifier("recursive"), expression=exp.true()),
        ],
    )
    return exp.Subquery(this=exp.select(call))
