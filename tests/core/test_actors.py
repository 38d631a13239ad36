"""core.actors: the actor codes the services record, shown as names in the operator's words."""

import pytest
from django.utils import translation

from core.actors import actor_label, actor_labels
from tests.factories.users import UserFactory

pytestmark = pytest.mark.django_db


def test_a_user_is_shown_by_full_name_or_else_username() -> None:
    named = UserFactory(username="zhangsan", first_name="张三")
    plain = UserFactory(username="lisi")
    assert actor_label(f"user:{named.pk}") == "张三"
    assert actor_label(f"user:{plain.pk}") == "lisi"
    assert actor_label(f"admin:user:{plain.pk}") == "lisi"  # the admin's triggers


def test_codes_without_a_person_read_as_words() -> None:
    with translation.override("zh-hans"):
        assert actor_label("api_key:erp:ab12cd34") == "API 密钥「erp」"
        assert actor_label("api_key:erp:sync:ab12cd34") == "API 密钥「erp:sync」"
        assert actor_label("schedule") == "定时任务"
        assert actor_label("command") == "命令行"
        assert actor_label("default") == "系统"
        assert actor_label("") == "系统"
        assert actor_label("user:999999") == "已删除的用户 #999999"
        assert actor_label("test") == "test"  # an unknown code stays as written
    with translation.override("en"):
        assert actor_label("api_key:erp:ab12cd34") == "API key “erp”"
        assert actor_label("schedule") == "Scheduled task"


def test_a_page_of_actors_is_resolved_with_one_query(django_assert_num_queries) -> None:
    users = [UserFactory(username=f"operator-{n}") for n in range(3)]
    codes = [f"user:{user.pk}" for user in users] + ["schedule", "api_key:erp:ab12cd34"]
    with translation.override("zh-hans"):
        with django_assert_num_queries(1):
            labels = actor_labels(codes * 2)
        assert labels == {
            **{f"user:{user.pk}": user.username for user in users},
            "schedule": "定时任务",
            "api_key:erp:ab12cd34": "API 密钥「erp」",
        }
        with django_assert_num_queries(0):
            assert actor_labels(["schedule", "command"]) == {
                "schedule": "定时任务",
                "command": "命令行",
            }
