"""The IMAP connection budget of one mail account, against Dovecot's per-user limit."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from webmail.imap_budget import Shape


def test_one_machine_as_compose_runs_it_fits_dovecots_default_limit():
    # gunicorn 2 processes x 8 threads, each holding at most its pool of 2; 4 Celery
    # prefork processes holding one each; one admin "Test connection".
    shape = Shape(pool_size=2)
    assert (shape.per_web_node, shape.per_worker_node) == (4, 4)
    assert shape.total == shape.per_address == 9
    assert shape.fits(10)


def test_two_web_and_two_worker_nodes_behind_one_address_need_a_higher_limit():
    shape = Shape(pool_size=2, web_nodes=2, worker_nodes=2)
    assert shape.per_address == 2 * 4 + 2 * 4 + 1 == 17
    assert not shape.fits(10)
    assert shape.fits(17)
    # Even a pool of one is too much for 10: 2 x 2 + 2 x 4 + 1 = 13.
    assert shape.largest_fitting_pool(10) == 0
    assert shape.largest_fitting_pool(13) == 1


def test_nodes_with_addresses_of_their_own_each_count_alone():
    shape = Shape(pool_size=2, web_nodes=3, worker_nodes=3, shared_address=False)
    assert shape.total == 3 * 4 + 3 * 4 + 1
    assert shape.per_address == 5  # a web node's 4, and the admin's test from it
    assert shape.fits(10)


def test_a_process_holds_no_more_connections_than_threads_nor_more_than_its_pool():
    assert Shape(pool_size=5, web_threads=3).per_web_process == 3
    assert Shape(pool_size=5, worker_threads=8).per_worker_process == 5
    assert Shape(pool_size=1).per_web_node == 2


def run(*args: str) -> str:
    out = StringIO()
    call_command("imap_budget", *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_the_budget_from_the_pool_setting(settings):
    settings.IMAP_POOL_SIZE = 2
    output = run("--web-nodes", "2", "--worker-nodes", "2")
    assert "web: 2 node(s) x 2 process(es) x 2 = 8" in output
    assert "workers: 2 node(s) x 4 process(es) x 1 = 8" in output
    assert "total: 17" in output
    assert "Over the limit by 7" in output
    assert "at least 17" in output

    settings.IMAP_POOL_SIZE = 1
    assert "total: 7" in run()
    assert "Fits, with 3 to spare." in run()


def test_the_command_suggests_a_pool_size_that_fits_and_check_fails_when_over(settings):
    settings.IMAP_POOL_SIZE = 4
    output = run("--web-processes", "4")
    # 4 x 4 + 4 + 1 = 21; a pool of 1 gives 4 + 4 + 1 = 9.
    assert "set FACTEUR_IMAP_POOL_SIZE to 1 or less" in output
    with pytest.raises(CommandError, match="More IMAP connections"):
        run("--web-processes", "4", "--check")
    settings.IMAP_POOL_SIZE = 1
    run("--check")  # fits: no error


def test_the_command_refuses_negative_counts():
    with pytest.raises(CommandError):
        run("--web-nodes", "-1")
