"""Every Celery task has a soft and a hard time limit."""

from __future__ import annotations

import pytest
from celery import Task
from django.conf import settings

from webmail import tasks
from webmail.celery import app

TASKS = [value for value in vars(tasks).values() if isinstance(value, Task)]


def test_the_tasks_module_has_tasks():
    assert len(TASKS) >= 7


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.name)
def test_every_task_has_a_soft_and_a_hard_time_limit(task):
    soft = task.soft_time_limit or app.conf.task_soft_time_limit
    hard = task.time_limit or app.conf.task_time_limit
    assert soft and hard
    # The task is told to stop before its process is replaced.
    assert soft < hard


def test_a_pop3_fetch_step_has_its_own_longer_limit():
    assert tasks.fetch_pop3.soft_time_limit == settings.POP3_FETCH_STEP_SECONDS
    assert tasks.fetch_pop3.soft_time_limit > settings.CELERY_TASK_SOFT_TIME_LIMIT
