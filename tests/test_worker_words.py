"""Worker type, age and "is this a wage question" read from a chat message (issue 16); the
staff list's own cases are in tests/test_stafflist.py."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.domain.rates import WorkerType
from bot.domain.salary import parse_salary
from bot.domain.worker_words import read_worker_words, salary_question


@pytest.mark.parametrize(
    ("text", "worker", "choices", "age"),
    [
        ("3000 foreign worker", WorkerType.FOREIGN, None, None),
        ("gaji 2000 pekerja asing", WorkerType.FOREIGN, None, None),
        ("外劳3000", WorkerType.FOREIGN, None, None),
        ("外籍员工工资2500", WorkerType.FOREIGN, None, None),
        ("RM1800 pembantu rumah asing", WorkerType.DOMESTIC_FOREIGN, None, None),
        ("外佣1800", WorkerType.DOMESTIC_FOREIGN, None, None),
        ("菲佣1800要交多少", WorkerType.DOMESTIC_FOREIGN, None, None),
        ("local maid 1200", WorkerType.DOMESTIC_LOCAL, None, None),
        ("本地女佣1500", WorkerType.DOMESTIC_LOCAL, None, None),
        ("3.5k maid", None, (WorkerType.DOMESTIC_LOCAL, WorkerType.DOMESTIC_FOREIGN), None),
        ("帮佣 2000", None, (WorkerType.DOMESTIC_LOCAL, WorkerType.DOMESTIC_FOREIGN), None),
        ("salary 4000 age 58", None, tuple(WorkerType), 58),
        ("gaji 3000 umur 60 tahun", None, tuple(WorkerType), 60),
        ("60岁员工工资3000", None, tuple(WorkerType), 60),
        ("my staff is 57 years old, pay 2500", None, tuple(WorkerType), 57),
        ("rm3000 pekerja tempatan berumur 56", WorkerType.EMPLOYEE, None, 56),
        ("RM3,500", None, tuple(WorkerType), None),
        ("my worker is 61, salary 2500", None, tuple(WorkerType), 61),
        ("my salary is 3000", None, tuple(WorkerType), None),
    ],
)
def test_read_worker_words(text: str, worker: WorkerType | None, choices: tuple | None, age: int | None) -> None:
    w = read_worker_words(text)
    assert w.choices == (choices if choices is not None else (worker,))
    assert (w.choices[0] if len(w.choices) == 1 else None) == worker
    assert w.age == age


@pytest.mark.parametrize("text", ["60岁员工工资3000", "my worker earns 2500", "gaji pekerja 1800"])
def test_a_generic_worker_word_leaves_the_type_open(text: str) -> None:
    w = read_worker_words(text)
    assert w.vague and w.choices == tuple(WorkerType)  # a foreign worker is a worker too


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("how much socso for 3k", "3000"),
        ("how much is socso for RM3000", "3000"),
        ("gaji RM2,500 berapa perkeso", "2500"),
        ("3000块要扣多少社险", "3000"),
        ("工资3000要交多少", "3000"),
        ("salary 4000 age 58", "4000"),
        ("60岁员工工资3000", "3000"),
        ("RM1800 pembantu rumah asing", "1800"),
        ("3000 foreign worker", "3000"),
        ("berapa caruman gaji 1800", "1800"),
        ("my worker is 61 salary 2500", "2500"),
        ("he is 45 and earns 2000", "2000"),
    ],
)
def test_salary_question_keeps_one_wage(text: str, amount: str) -> None:
    rest = salary_question(text)
    assert rest is not None
    p = parse_salary(rest)
    assert p.kind == "ok" and p.amount == Decimal(amount)


@pytest.mark.parametrize(
    "text",
    [
        "what is act 800",
        "what happens if I pay RM500 late",
        "deadline 15 march 2026",
        "call 1-300-22-8000",
        "socso for 2 maids",
        "how to register my maid",
        "socso 1.25% for maid",
        "how much is the fine, RM10000?",
        "borang 8a",
        "",
    ],
)
def test_not_a_salary_question(text: str) -> None:
    assert salary_question(text) is None
