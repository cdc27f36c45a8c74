"""sqlglot's BigQuery dialect, extended with the ``ML.*`` table functions it cannot parse.

sqlglot 30 parses ``ML.PREDICT`` only; ``ML.WEIGHTS(MODEL m)``, ``ML.RECOMMEND``,
``ML.EVALUATE``, ``ML.TRAINING_INFO`` and the other table functions of BigQuery ML are syntax
errors there. :class:`HybridBigQuery` parses every one of them into one node, :class:`MLCall`:
``ML.NAME(MODEL model [, TABLE t | (query)] [, STRUCT(...)])``. The node is replaced by a
registered Arrow table before any SQL is written out, so it needs no generator.
"""

from __future__ import annotations

import typing
from typing import Any

from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.tokens import TokenType

__all__ = ["ML_FUNCTIONS", "HybridBigQuery", "MLCall"]

#: The table functions of BigQuery ML that hybridrec answers.
ML_FUNCTIONS = (
    "PREDICT",
    "RECOMMEND",
    "WEIGHTS",
    "EVALUATE",
    "TRAINING_INFO",
    "EXPLAIN_PREDICT",
    "GLOBAL_EXPLAIN",
    "FEATURE_INFO",
    "TRIAL_INFO",
)
# Parsed too, so that they are refused by name rather than as a syntax error.
_OTHER_ML = (
    "FORECAST",
    "DETECT_ANOMALIES",
    "CONFUSION_MATRIX",
    "ROC_CURVE",
    "CENTROIDS",
    "PRINCIPAL_COMPONENTS",
    "ADVANCED_WEIGHTS",
    "ARIMA_COEFFICIENTS",
    "EXPLAIN_FORECAST",
    "GENERATE_TEXT",
    "GENERATE_EMBEDDING",
    "TRANSFORM",
    "RECONSTRUCTION_LOSS",
    "HOLIDAY_INFO",
)


class MLCall(exp.Expression):
    """``ML.<this>(MODEL model, input, params)``: ``model`` a :class:`exp.Table`, ``input`` a
    :class:`exp.Table` (``TABLE t``) or :class:`exp.Subquery` (``(query)``), ``params`` the
    trailing ``STRUCT(...)``."""

    arg_types: typing.ClassVar[dict[str, bool]] = {
        "this": True,
        "model": True,
        "input": False,
        "params": False,
    }

    @property
    def function(self) -> str:
        return str(self.this).upper()


def _parse_ml_call(self: Any, name: str) -> exp.Expression:
    # sqlglot calls a function parser with the tokens "ML" "." NAME "(" just read.
    before = self._tokens[self._index - 4] if self._index >= 4 else None
    if before is None or before.text.upper() != "ML":
        return self.expression(
            exp.Anonymous(this=name, expressions=self._parse_csv(self._parse_lambda))
        )
    if not self._match_text_seq("MODEL"):
        self.raise_error(f"ML.{name} needs MODEL model_name as its first argument")
    model = self._parse_table_parts()
    input_: exp.Expression | None = None
    params: exp.Expression | None = None
    while self._match(TokenType.COMMA):
        if self._match(TokenType.STRUCT, advance=False):
            params = self._parse_bitwise()
        elif self._match(TokenType.TABLE):
            input_ = self._parse_table_parts()
        elif self._match(TokenType.L_PAREN, advance=False):
            input_ = self._parse_table()
        else:
            self.raise_error(f"ML.{name}: expected TABLE name, (query) or STRUCT(...)")
    return self.expression(MLCall(this=exp.var(name), model=model, input=input_, params=params))


def _parser(name: str) -> Any:
    return lambda self: _parse_ml_call(self, name)


_BigQueryParser: Any = BigQuery.Parser  # a class attribute, which mypy cannot take as a base


class HybridBigQuery(BigQuery):
    """BigQuery's dialect plus every ``ML.*`` table function as an :class:`MLCall`."""

    class Parser(_BigQueryParser):
        FUNCTION_PARSERS: typing.ClassVar[dict[str, Any]] = {
            **BigQuery.Parser.FUNCTION_PARSERS,
            **{name: _parser(name) for name in (*ML_FUNCTIONS, *_OTHER_ML)},
        }
