"""Subjects of replies and forwards: one prefix, never a pile of them."""

from __future__ import annotations

import pytest

from webmail.compose.subjects import forward_subject, reply_subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Lunch", "Re: Lunch"),
        ("Re: Lunch", "Re: Lunch"),
        ("Re: Re: Lunch", "Re: Lunch"),
        ("RE: re: Lunch", "Re: Lunch"),
        ("Re[2]: Lunch", "Re: Lunch"),
        ("Re(3): Lunch", "Re: Lunch"),
        ("AW: Re: Lunch", "Re: Lunch"),
        ("SV: Lunch", "Re: Lunch"),
        ("Antw: Lunch", "Re: Lunch"),
        ("RE : Déjeuner", "Re: Déjeuner"),
        ("Réf. : Déjeuner", "Re: Déjeuner"),
        ("Re:Lunch", "Re: Lunch"),
        ("  Re:   Lunch  ", "Re: Lunch"),
        ("Re: Fwd: Lunch", "Re: Fwd: Lunch"),
        ("Fwd: Lunch", "Re: Fwd: Lunch"),
        ("Re: Fwd: Re: Lunch", "Re: Fwd: Re: Lunch"),
        ("Regarding the lunch", "Re: Regarding the lunch"),
        ("Réunion", "Re: Réunion"),
        ("Re: [list] Re: Lunch", "Re: [list] Re: Lunch"),
        ("", "Re:"),
        ("Re:", "Re:"),
    ],
)
def test_reply_subject(subject, expected):
    assert reply_subject(subject) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Lunch", "Fwd: Lunch"),
        ("Fwd: Lunch", "Fwd: Lunch"),
        ("Fw: FWD: Lunch", "Fwd: Lunch"),
        ("TR: Déjeuner", "Fwd: Déjeuner"),
        ("WG: Mittagessen", "Fwd: Mittagessen"),
        ("Re: Lunch", "Fwd: Re: Lunch"),
        ("Fwd: Re: Lunch", "Fwd: Re: Lunch"),
        ("Transport", "Fwd: Transport"),
        ("", "Fwd:"),
    ],
)
def test_forward_subject(subject, expected):
    assert forward_subject(subject) == expected


def test_a_long_run_of_prefixes_is_quick_and_goes_whole():
    assert reply_subject("Re: " * 500 + "x") == "Re: x"
    assert reply_subject(" " * 5000 + "x") == "Re: x"
