"""Deterministic demo data: a believable beauty brand's private domain, written with COPY.

`generate(customers=..., seed=..., orders_per_customer=..., as_of=...)` makes staff (导购),
tag groups, WeCom groups, then customers in chunks: identities (encrypted with
`crm.personal_data`), WeCom consent (+ events), tags, group stays (with leaves and re-joins),
orders with seasonality around 618 and Double 11, refunds, order items, and interactions
(replies, clicks, visits, live views, coupon claims) in three styles of engagement.

Rules of this module:
- The same seed, size and reference date give the same data (numpy `default_rng`, drawn in a
  fixed order; nothing depends on database ids except id-derived external ids).
- Rows go in through PostgreSQL COPY on Django's own psycopg connection, one transaction per
  chunk of customers, so 1M customers / 10M orders stream in bounded memory.
- Ids are reserved from each table's sequence before a chunk is written (`_reserve_ids`). This
  is a loader for development and benchmarks: concurrent writers to the same tables during a
  load are not supported.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from tqdm import tqdm

from crm.models import PURCHASE_STATUSES, IdentityProvider
from crm.personal_data import encrypt, hash_identity, mask

DEMO_CORP_ID = "ww_demo_corp"
HISTORY_DAYS = 730
# 5,000 customers at 10 orders each is ~50k orders and ~90k items per COPY transaction:
# large enough to amortise round trips, small enough to keep memory flat at any size.
CHUNK_CUSTOMERS = 5_000
STAFF_COUNT = 30
CUSTOMERS_PER_GROUP = 200

SOURCE_CHANNELS = {
    "douyin": 0.30,
    "wechat_channels": 0.17,
    "miniprogram": 0.17,
    "xiaohongshu": 0.12,
    "offline_store": 0.10,
    "kuaishou": 0.08,
    "bilibili": 0.06,
}
ORDER_SOURCE_BY_CHANNEL = {
    "douyin": "douyin_shop",
    "kuaishou": "kuaishou_shop",
    "xiaohongshu": "xhs_shop",
    "offline_store": "pos",
}
STORES = [
    "上海南京西路店",
    "北京三里屯店",
    "杭州湖滨店",
    "成都太古里店",
    "广州天河店",
    "深圳万象城店",
]

# (sku, name, category, interest tag, unit price)
CATALOGUE: list[tuple[str, str, str, str, float]] = [
    ("MU-LIP-01", "丝绒雾面口红 #01", "美妆", "彩妆", 189.0),
    ("MU-LIP-02", "水光唇釉 #12", "美妆", "彩妆", 159.0),
    ("MU-FDN-01", "轻薄持妆粉底液", "美妆", "彩妆", 329.0),
    ("MU-CUS-01", "气垫粉底 替换装", "美妆", "彩妆", 139.0),
    ("MU-EYE-01", "九色眼影盘", "美妆", "彩妆", 259.0),
    ("MU-MAS-01", "纤长睫毛膏", "美妆", "彩妆", 119.0),
    ("MU-BRW-01", "极细眉笔", "美妆", "彩妆", 69.0),
    ("SK-SER-01", "玻色因精华 30ml", "护肤", "护肤", 599.0),
    ("SK-SER-02", "烟酰胺美白精华", "护肤", "护肤", 369.0),
    ("SK-CRM-01", "修护面霜 50g", "护肤", "护肤", 459.0),
    ("SK-TON-01", "保湿爽肤水", "护肤", "护肤", 199.0),
    ("SK-EMU-01", "平衡乳液", "护肤", "护肤", 219.0),
    ("SK-MSK-01", "补水面膜 10片", "护肤", "护肤", 129.0),
    ("SK-SUN-01", "清透防晒霜 SPF50", "护肤", "护肤", 179.0),
    ("SK-EYE-01", "抗皱眼霜", "护肤", "护肤", 399.0),
    ("SK-SET-01", "618 护肤礼盒", "护肤", "护肤", 899.0),
    ("PC-SHP-01", "氨基酸洗发水", "个护", "身体护理", 89.0),
    ("PC-CND-01", "修护护发素", "个护", "身体护理", 79.0),
    ("PC-TTH-01", "美白牙膏", "个护", "身体护理", 39.0),
    ("PC-CLN-01", "氨基酸洁面乳", "个护", "护肤", 99.0),
    ("PC-HND-01", "护手霜三支装", "个护", "身体护理", 69.0),
    ("BD-LOT-01", "烟酰胺身体乳", "身体护理", "身体护理", 139.0),
    ("BD-WSH-01", "香氛沐浴露", "身体护理", "身体护理", 99.0),
    ("BD-SCR-01", "磨砂膏", "身体护理", "身体护理", 119.0),
    ("FR-EDP-01", "白茶淡香水 50ml", "香氛", "香水", 499.0),
    ("FR-EDP-02", "玫瑰浓香水 30ml", "香氛", "香水", 399.0),
    ("FR-MIN-01", "香水小样套装", "香氛", "香水", 149.0),
    ("FR-CND-01", "香薰蜡烛", "香氛", "香水", 229.0),
    ("FR-DIF-01", "无火香薰", "香氛", "香水", 189.0),
]
INTEREST_TAGS = ["彩妆", "护肤", "香水", "身体护理"]
TAG_GROUPS: list[tuple[str, bool, str, list[str]]] = [
    ("兴趣偏好", False, "可多选：客户感兴趣的品类", INTEREST_TAGS),
    ("消费能力", True, "按客单价分层，互斥", ["高", "中", "低"]),
    ("肤质", True, "导购填写，互斥", ["干性", "油性", "混合", "敏感"]),
]

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢"
)
GIVEN = list("静丽敏燕艳娟霞芳娜婷雪琳颖晶欣怡佳悦诗梦雨涵萱琪瑶妍晨曦思语可馨子涛伟强磊军洋勇杰")
NICKNAMES = [
    "小仙女",
    "momo",
    "橙子",
    "Lily",
    "晴天",
    "奶茶",
    "喵喵",
    "Coco",
    "小鹿",
    "糖糖",
    "Vivian",
    "阿紫",
]
# (province, [cities], weight): weighted towards the coastal provinces that buy most online.
REGIONS: list[tuple[str, list[str], float]] = [
    ("广东", ["广州", "深圳", "佛山", "东莞"], 0.14),
    ("浙江", ["杭州", "宁波", "温州"], 0.10),
    ("江苏", ["南京", "苏州", "无锡"], 0.10),
    ("上海", ["上海"], 0.08),
    ("北京", ["北京"], 0.07),
    ("山东", ["济南", "青岛"], 0.07),
    ("四川", ["成都", "绵阳"], 0.07),
    ("福建", ["福州", "厦门"], 0.05),
    ("湖北", ["武汉"], 0.05),
    ("河南", ["郑州", "洛阳"], 0.05),
    ("湖南", ["长沙"], 0.04),
    ("陕西", ["西安"], 0.03),
    ("重庆", ["重庆"], 0.03),
    ("天津", ["天津"], 0.02),
    ("安徽", ["合肥"], 0.03),
    ("辽宁", ["沈阳", "大连"], 0.03),
    ("云南", ["昆明"], 0.02),
    ("广西", ["南宁"], 0.02),
]
# (interaction kind, the source system that reports it)
INTERACTION_KINDS: list[tuple[str, str]] = [
    ("message_reply", "wecom"),
    ("link_click", "wecom"),
    ("content_view", "miniprogram"),
    ("miniprogram_visit", "miniprogram"),
    ("group_message", "wecom"),
    ("live_stream_view", "douyin"),
    ("coupon_claim", "miniprogram"),
]
# Weights of the kinds above for each style of engagement: chatty (replies and group
# messages), browsing (content, shop visits, live streams), deal-seeking (clicks and coupons).
INTERACTION_STYLES: list[list[float]] = [
    [0.35, 0.1, 0.05, 0.1, 0.3, 0.05, 0.05],
    [0.05, 0.1, 0.3, 0.3, 0.05, 0.15, 0.05],
    [0.05, 0.3, 0.05, 0.15, 0.05, 0.05, 0.35],
]
INTERACTIONS_PER_CUSTOMER_MAX = 80
GROUP_THEMES = ["宠粉福利群", "新品试用群", "VIP会员群", "护肤交流群", "彩妆研究所", "香氛爱好者"]
PHONE_PREFIXES = ["138", "139", "136", "135", "150", "151", "158", "186", "188", "177", "199"]


class Writer(Protocol):
    def write(self, msg: str, /) -> object: ...


@dataclass
class _Context:
    rng: np.random.Generator
    # Interactions draw from their own stream, so that adding them left every other table of
    # a seed as it was.
    interaction_rng: np.random.Generator
    as_of: datetime  # end of history (UTC-aware), the reference date at 00:00 business time
    start_epoch: float
    day_cdf: np.ndarray
    staff_ids: np.ndarray
    staff_load: np.ndarray
    group_ids: np.ndarray
    tag_ids: dict[tuple[str, str], int]
    group_ids_by_tag_group: dict[str, int]
    zero_order_share: float
    one_time_share: float
    repeat_mean: float


def generate(
    *,
    customers: int,
    seed: int,
    orders_per_customer: float,
    as_of: date,
    stdout: Writer | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Write `customers` demo customers with their history over two years before `as_of`.

    `orders_per_customer` is the mean over all customers (prospects with no order included).
    Returns the number of rows written per table.
    """
    rng = np.random.default_rng(seed)
    zone = ZoneInfo(settings.TIME_ZONE)
    end = datetime.combine(as_of, time.min, tzinfo=zone)
    start = end - timedelta(days=HISTORY_DAYS)
    counts: dict[str, int] = {}
    connection.ensure_connection()
    with transaction.atomic():
        staff_ids = _ensure_staff(counts)
        tag_ids, tag_group_ids = _ensure_tags(counts)
        n_groups = max(5, customers // CUSTOMERS_PER_GROUP)
        group_ids = _create_groups(rng, n_groups, staff_ids, start, counts)
    zero_share, one_time_share, repeat_mean = _order_count_model(orders_per_customer)
    ctx = _Context(
        rng=rng,
        interaction_rng=np.random.default_rng([seed, 1]),
        as_of=end,
        start_epoch=start.timestamp(),
        day_cdf=_season_cdf(start.date()),
        staff_ids=staff_ids,
        staff_load=_normalised(rng.gamma(3.0, 1.0, size=len(staff_ids))),
        group_ids=group_ids,
        tag_ids=tag_ids,
        group_ids_by_tag_group=tag_group_ids,
        zero_order_share=zero_share,
        one_time_share=one_time_share,
        repeat_mean=repeat_mean,
    )
    bar = tqdm(total=customers, unit="customer", file=sys.stderr, disable=not progress)
    done = 0
    while done < customers:
        size = min(CHUNK_CUSTOMERS, customers - done)
        with transaction.atomic():
            _write_chunk(ctx, size, counts)
        done += size
        bar.update(size)
    bar.close()
    if stdout is not None:
        stdout.write(
            "Demo data: " + ", ".join(f"{table}={n}" for table, n in sorted(counts.items())) + "\n"
        )
    return counts


# --- reference data -------------------------------------------------------------------------


def _ensure_staff(counts: dict[str, int]) -> np.ndarray:
    from crm.models import StaffMember

    ids = []
    created = 0
    rng = np.random.default_rng(0)  # names only; independent of the data seed
    for number in range(1, STAFF_COUNT + 1):
        name = f"导购-{SURNAMES[number % len(SURNAMES)]}{GIVEN[int(rng.integers(len(GIVEN)))]}"
        staff, is_new = StaffMember.objects.get_or_create(
            wecom_userid=f"demo_guide_{number:02d}", defaults={"name": name}
        )
        ids.append(staff.pk)
        created += is_new
    counts["staff_members"] = created
    return np.array(ids, dtype=np.int64)


def _ensure_tags(counts: dict[str, int]) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    from crm.models import Tag, TagGroup

    tag_ids: dict[tuple[str, str], int] = {}
    group_ids: dict[str, int] = {}
    for group_name, is_exclusive, description, names in TAG_GROUPS:
        group, _ = TagGroup.objects.get_or_create(
            name=group_name, defaults={"is_exclusive": is_exclusive, "description": description}
        )
        group_ids[group_name] = group.pk
        for name in names:
            tag, _ = Tag.objects.get_or_create(group=group, name=name)
            tag_ids[(group_name, name)] = tag.pk
    counts["tags"] = len(tag_ids)
    return tag_ids, group_ids


def _create_groups(
    rng: np.random.Generator,
    n_groups: int,
    staff_ids: np.ndarray,
    start: datetime,
    counts: dict[str, int],
) -> np.ndarray:
    first_id = _reserve_ids("crm_group", n_groups)
    ids = np.arange(first_id, first_id + n_groups, dtype=np.int64)
    owners = rng.choice(staff_ids, size=n_groups)
    themes = rng.integers(len(GROUP_THEMES), size=n_groups)
    cities = rng.integers(len(REGIONS), size=n_groups)
    created = _timestamps(start.timestamp() + rng.uniform(0, 30 * 86400, size=n_groups))
    rows = (
        (
            int(gid),
            "wecom_group",
            f"wrDemo{gid:012d}",
            f"{REGIONS[city][1][0]}{GROUP_THEMES[theme]} {number + 1}",
            int(owner),
            created_at,
        )
        for number, (gid, owner, theme, city, created_at) in enumerate(
            zip(ids, owners, themes, cities, created, strict=True)
        )
    )
    _copy("crm_group", ["id", "kind", "external_id", "name", "owner_id", "created_at"], rows)
    counts["groups"] = n_groups
    return ids


# --- distributions --------------------------------------------------------------------------


def _order_count_model(mean: float) -> tuple[float, float, float]:
    """(share with no order, share of buyers buying once, mean extra orders of repeat buyers).

    Buyers have 1 + (0 with the one-time share, else 1 + NegBin) orders: many one-time
    buyers and a loyal head, with the overall mean equal to `mean`.
    """
    zero_share = 0.2
    buyers_mean = max(mean / (1 - zero_share), 1.0)
    one_time_share = 0.5 if mean <= 5 else 0.42
    extra = buyers_mean - 1.0
    if extra <= 0:
        return zero_share, 1.0, 1.0
    repeat_extra = extra / (1 - one_time_share)
    if repeat_extra < 1.0:  # a low mean: fewer repeat buyers with exactly one extra order
        return zero_share, 1.0 - extra, 1.0
    return zero_share, one_time_share, repeat_extra


def _season_cdf(start: date) -> np.ndarray:
    """Cumulative weight of each history day: growth, weekends, 38, 618, Double 11, 12.12."""
    weights = np.empty(HISTORY_DAYS)
    for offset in range(HISTORY_DAYS):
        day = start + timedelta(days=offset)
        weight = 0.6 + 0.8 * offset / HISTORY_DAYS  # the brand grows
        weight *= 1.15 if day.weekday() >= 5 else 1.0
        month, dom = day.month, day.day
        if month == 6 and dom <= 18:
            weight *= 1.5 + (4.0 if dom >= 16 else 0.0) + (2.0 if dom == 1 else 0.0)
        elif (month == 10 and dom >= 20) or (month == 11 and dom <= 11):
            weight *= 1.6 + (3.0 if month == 10 and dom in (24, 31) else 0.0)
            weight *= 6.0 if (month == 11 and dom in (10, 11)) else 1.0
        elif month == 12 and dom == 12:
            weight *= 2.5
        elif month == 3 and 5 <= dom <= 8:
            weight *= 1.8
        elif month == 2 and dom <= 14:
            weight *= 0.6  # Spring Festival lull (approximate)
        weights[offset] = weight
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _sample_days(ctx: _Context, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A seasonal day offset in [low, high] for each pair (inverse CDF restricted to the span)."""
    cdf = ctx.day_cdf
    below = np.where(low > 0, cdf[np.maximum(low - 1, 0)], 0.0)
    u = below + ctx.rng.random(len(low)) * (cdf[high] - below)
    days = np.searchsorted(cdf, u, side="left")
    return np.clip(days, low, high)


def _time_of_day(rng: np.random.Generator, size: int) -> np.ndarray:
    """Seconds after midnight, business time: an evening peak as in Chinese e-commerce."""
    hours = np.array(
        [
            0.5,
            0.3,
            0.1,
            0.1,
            0.1,
            0.2,
            0.5,
            1,
            2,
            3,
            3.5,
            4,
            4.5,
            3.5,
            3,
            3,
            3.5,
            4,
            4.5,
            5.5,
            7,
            8,
            7,
            3,
        ]
    )
    hour = rng.choice(24, size=size, p=hours / hours.sum())
    return hour * 3600 + rng.integers(0, 3600, size=size)


# --- one chunk of customers -----------------------------------------------------------------


def _write_chunk(ctx: _Context, n: int, counts: dict[str, int]) -> None:
    rng = ctx.rng
    cid0 = _reserve_ids("crm_customer", n)
    cids = np.arange(cid0, cid0 + n, dtype=np.int64)

    # Acquisition: a seasonal day, at least 14 days before the reference date for most.
    first_day = _sample_days(ctx, np.zeros(n, dtype=np.int64), np.full(n, HISTORY_DAYS - 1))
    first_seen = ctx.start_epoch + first_day * 86400.0 + _time_of_day(rng, n)
    channel_names = list(SOURCE_CHANNELS)
    channels = rng.choice(len(channel_names), size=n, p=_normalised(list(SOURCE_CHANNELS.values())))
    gender = rng.choice(3, size=n, p=[0.78, 0.15, 0.07])
    has_birthday = rng.random(n) < 0.65
    birthday_days = rng.integers(18 * 365, 50 * 365, size=n)
    region = rng.choice(len(REGIONS), size=n, p=_normalised([r[2] for r in REGIONS]))
    city_pick = rng.integers(0, 4, size=n)
    name_kind = rng.random(n)
    surname = rng.integers(len(SURNAMES), size=n)
    given = rng.integers(len(GIVEN), size=(n, 2))
    nick = rng.integers(len(NICKNAMES), size=n)
    nick_suffix = rng.integers(10_000, size=n)
    has_wecom = rng.random(n) < 0.85
    owner = np.where(has_wecom, rng.choice(ctx.staff_ids, size=n, p=ctx.staff_load), 0)
    favourite = rng.integers(len(INTEREST_TAGS), size=n)
    # Spending power shifts item choice towards dearer SKUs.
    wealth = rng.lognormal(0.0, 0.5, size=n)

    # Orders per customer: prospects, one-time buyers, a negative-binomial loyal head.
    is_buyer = rng.random(n) >= ctx.zero_order_share
    is_repeat = rng.random(n) >= ctx.one_time_share
    extra = 1 + rng.negative_binomial(0.7, 0.7 / (0.7 + max(ctx.repeat_mean - 1, 1e-9)), size=n)
    n_orders = np.where(is_buyer, 1 + np.where(is_repeat, np.minimum(extra, 300), 0), 0)
    # A customer stays active for a while, then sleeps or churns: recency varies.
    active_days = rng.exponential(420.0, size=n).astype(np.int64) + 7
    last_day = np.minimum(first_day + active_days, HISTORY_DAYS - 1)

    # Orders: the first shortly after acquisition, the rest seasonal within the active span.
    total = int(n_orders.sum())
    owner_of = np.repeat(np.arange(n), n_orders)
    is_first = np.zeros(total, dtype=bool)
    starts = np.cumsum(n_orders) - n_orders
    is_first[starts[n_orders > 0]] = True
    delay = np.where(rng.random(total) < 0.6, 0.0, rng.exponential(3 * 86400.0, size=total))
    repeat_day = _sample_days(ctx, first_day[owner_of], last_day[owner_of])
    paid = np.where(
        is_first,
        first_seen[owner_of] + 60 + delay,
        ctx.start_epoch + repeat_day * 86400.0 + _time_of_day(rng, total),
    )
    paid = np.minimum(np.maximum(paid, first_seen[owner_of] + 60), ctx.as_of.timestamp() - 1)
    # Items: 1-4 lines, 60 % from the favourite interest, dearer SKUs for wealthier customers.
    lines = rng.choice([1, 2, 3, 4], size=total, p=[0.55, 0.28, 0.12, 0.05])
    n_items = int(lines.sum())
    item_order = np.repeat(np.arange(total), lines)
    item_customer = owner_of[item_order]
    line_no = np.arange(n_items) - np.repeat(np.cumsum(lines) - lines, lines) + 1
    sku = _pick_skus(rng, favourite[item_customer], wealth[item_customer])
    quantity = rng.choice([1, 2, 3], size=n_items, p=[0.85, 0.12, 0.03])
    price = np.array([entry[4] for entry in CATALOGUE])[sku]
    line_total = price * quantity
    order_total = np.bincount(item_order, weights=line_total, minlength=total)
    # Status: ~5 % refunded, ~3 % partially refunded, ~1 % cancelled.
    status_draw = rng.random(total)
    status = np.select(
        [status_draw < 0.05, status_draw < 0.08, status_draw < 0.09],
        ["refunded", "partially_refunded", "cancelled"],
        "paid",
    )
    refunded = np.where(
        status == "refunded",
        order_total,
        np.where(
            status == "partially_refunded",
            np.round(order_total * rng.uniform(0.2, 0.7, total)),
            0.0,
        ),
    )
    refund_at = paid + rng.uniform(86400, 10 * 86400, size=total)
    updated = np.where(status == "paid", paid, np.minimum(refund_at, ctx.as_of.timestamp() - 1))

    # Per-customer aggregates for profile, member level and the 消费能力 tag.
    net = np.bincount(owner_of, weights=order_total - refunded, minlength=n)
    aov = np.divide(
        np.bincount(owner_of, weights=order_total, minlength=n), np.maximum(n_orders, 1)
    )
    level = np.select(
        [n_orders >= 12, n_orders >= 6, n_orders >= 3, n_orders >= 1], [4, 3, 2, 1], 0
    )
    last_paid = np.full(n, -np.inf)
    np.maximum.at(last_paid, owner_of, paid)
    customer_updated = np.maximum(first_seen, last_paid)

    first_seen_text = _timestamps(first_seen)
    updated_text = _timestamps(customer_updated)
    birthdays = (np.datetime64(ctx.as_of.date()) - birthday_days.astype("timedelta64[D]")).astype(
        str
    )
    customer_rows = []
    for i in range(n):
        province, cities, _ = REGIONS[region[i]]
        if name_kind[i] < 0.6:
            name = (
                SURNAMES[surname[i]]
                + GIVEN[given[i, 0]]
                + (GIVEN[given[i, 1]] if name_kind[i] < 0.35 else "")
            )
        elif name_kind[i] < 0.9:
            name = f"{NICKNAMES[nick[i]]}{SURNAMES[surname[i]]}"
        else:
            name = f"{NICKNAMES[nick[i]]}_{nick_suffix[i]:04d}"
        customer_rows.append(
            (
                int(cids[i]),
                name,
                ("female", "male", "unknown")[gender[i]],
                birthdays[i] if has_birthday[i] else None,
                province,
                cities[city_pick[i] % len(cities)],
                channel_names[channels[i]],
                first_seen_text[i],
                int(level[i]),
                int(net[i]),
                first_seen_text[i],
                updated_text[i],
                int(owner[i]) if owner[i] else None,
            )
        )
    _copy(
        "crm_customer",
        [
            "id",
            "display_name",
            "gender",
            "birthday",
            "province",
            "city",
            "source_channel",
            "first_seen_at",
            "member_level",
            "member_points",
            "created_at",
            "updated_at",
            "owner_id",
        ],
        customer_rows,
    )
    counts["customers"] = counts.get("customers", 0) + n

    _write_identities(ctx, cids, has_wecom, first_seen_text, counts)
    _write_consents(ctx, cids, has_wecom, first_seen, counts)
    _write_tags(ctx, cids, favourite, aov, n_orders, first_seen, counts)
    _write_memberships(ctx, cids, has_wecom, first_seen, counts)
    _write_interactions(ctx, cids, has_wecom, n_orders, first_day, last_day, first_seen, counts)

    # Orders and their items.
    oid0 = _reserve_ids("crm_order", total)
    order_ids = np.arange(oid0, oid0 + total, dtype=np.int64)
    order_channel = np.where(
        rng.random(total) < 0.7, channels[owner_of], channel_names.index("miniprogram")
    )
    store_pick = rng.integers(len(STORES), size=total)
    paid_text = _timestamps(paid)
    order_updated_text = _timestamps(updated)
    order_rows = []
    for j in range(total):
        channel = channel_names[order_channel[j]]
        source = ORDER_SOURCE_BY_CHANNEL.get(channel, "miniprogram")
        external_id = f"DM{order_ids[j]:012d}"
        amount = f"{order_total[j]:.2f}"
        refund = f"{refunded[j]:.2f}"
        store = STORES[store_pick[j]] if channel == "offline_store" else ""
        digest = hashlib.md5(  # noqa: S324 - a change detector, not security
            f"{source}|{external_id}|{status[j]}|{amount}|{refund}|{paid_text[j]}".encode()
        ).hexdigest()
        order_rows.append(
            (
                int(order_ids[j]),
                int(cids[owner_of[j]]),
                source,
                external_id,
                str(status[j]),
                amount,
                refund,
                "CNY",
                paid_text[j],
                channel,
                store,
                digest,
                paid_text[j],
                order_updated_text[j],
            )
        )
    _copy(
        "crm_order",
        [
            "id",
            "customer_id",
            "source",
            "external_id",
            "status",
            "total_amount",
            "refunded_amount",
            "currency",
            "paid_at",
            "channel",
            "store",
            "content_hash",
            "created_at",
            "updated_at",
        ],
        order_rows,
    )
    counts["orders"] = counts.get("orders", 0) + total
    del order_rows

    iid0 = _reserve_ids("crm_orderitem", n_items)
    item_customer_ids = cids[item_customer]
    item_order_ids = order_ids[item_order]
    purchased = np.isin(status, PURCHASE_STATUSES)
    order_purchased_text = [paid_text[j] if purchased[j] else None for j in range(total)]
    item_rows = (
        (
            iid0 + k,
            int(item_order_ids[k]),
            int(item_customer_ids[k]),
            int(line_no[k]),
            CATALOGUE[sku[k]][0],
            CATALOGUE[sku[k]][1],
            CATALOGUE[sku[k]][2],
            int(quantity[k]),
            f"{price[k]:.2f}",
            order_purchased_text[item_order[k]],
        )
        for k in range(n_items)
    )
    _copy(
        "crm_orderitem",
        [
            "id",
            "order_id",
            "customer_id",
            "line_no",
            "sku",
            "name",
            "category",
            "quantity",
            "unit_price",
            "purchased_at",
        ],
        item_rows,
    )
    counts["order_items"] = counts.get("order_items", 0) + n_items


def _pick_skus(rng: np.random.Generator, favourite: np.ndarray, wealth: np.ndarray) -> np.ndarray:
    size = len(favourite)
    prices = np.array([entry[4] for entry in CATALOGUE])
    interest_of_sku = np.array([INTEREST_TAGS.index(entry[3]) for entry in CATALOGUE])
    # Any SKU, weighted to cheaper ones for most; within the favourite interest 60 % of the time.
    result = np.empty(size, dtype=np.int64)
    from_favourite = rng.random(size) < 0.6
    for interest in range(len(INTEREST_TAGS)):
        for pool_mask, chosen in (
            (interest_of_sku == interest, from_favourite),
            (None, ~from_favourite),
        ):
            rows = np.flatnonzero(chosen & (favourite == interest))
            if not len(rows):
                continue
            pool = np.flatnonzero(pool_mask) if pool_mask is not None else np.arange(len(CATALOGUE))
            # Price preference: cheap SKUs are likelier, less so for wealthy customers.
            weight = (prices[pool][None, :] / 100.0) ** (-1.2 / wealth[rows][:, None])
            cdf = np.cumsum(weight, axis=1)
            u = rng.random(len(rows))[:, None] * cdf[:, -1:]
            result[rows] = pool[np.minimum((cdf < u).sum(axis=1), len(pool) - 1)]
    return result


def _write_identities(
    ctx: _Context,
    cids: np.ndarray,
    has_wecom: np.ndarray,
    created: Sequence[str],
    counts: dict[str, int],
) -> None:
    rng = ctx.rng
    n = len(cids)
    has_unionid = rng.random(n) < 0.7
    has_phone = rng.random(n) < 0.3
    phone_prefix = rng.integers(len(PHONE_PREFIXES), size=n)
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        cid = int(cids[i])
        token = hashlib.sha1(f"demo:{cid}".encode()).hexdigest()  # noqa: S324 - id shape only
        values: list[tuple[str, str, str]] = []
        if has_wecom[i]:
            values.append((IdentityProvider.WECOM, DEMO_CORP_ID, f"wm{token[:30]}"))
        if has_unionid[i]:
            unionid = hashlib.sha1(f"demo-unionid:{cid}".encode()).hexdigest()  # noqa: S324
            values.append((IdentityProvider.UNIONID, "", f"o{unionid[:27]}"))
        if has_phone[i]:
            # A bijection of the customer id keeps phones unique without a lookup.
            digits = (cid * 7_919 + 12_345_678) % 100_000_000
            values.append(
                (
                    IdentityProvider.PHONE,
                    "",
                    f"+{settings.DEFAULT_PHONE_REGION}"
                    f"{PHONE_PREFIXES[phone_prefix[i]]}{digits:08d}",
                )
            )
        for provider, namespace, value in values:
            rows.append(
                (
                    cid,
                    str(provider),
                    namespace,
                    hash_identity(provider, namespace, value),
                    encrypt(value),
                    mask(provider, value),
                    provider == IdentityProvider.PHONE,
                    created[i],
                )
            )
    first = _reserve_ids("crm_identity", len(rows))
    _copy(
        "crm_identity",
        [
            "id",
            "customer_id",
            "provider",
            "namespace",
            "value_hash",
            "value_encrypted",
            "value_masked",
            "is_sensitive",
            "created_at",
        ],
        ((first + k, *row) for k, row in enumerate(rows)),
    )
    counts["identities"] = counts.get("identities", 0) + len(rows)


def _write_consents(
    ctx: _Context,
    cids: np.ndarray,
    has_wecom: np.ndarray,
    first_seen: np.ndarray,
    counts: dict[str, int],
) -> None:
    rng = ctx.rng
    n = len(cids)
    opted_out = rng.random(n) < 0.05
    end = ctx.as_of.timestamp() - 1
    out_at = np.minimum(first_seen + rng.exponential(120 * 86400.0, size=n), end)
    opted_in_text = _timestamps(first_seen)
    out_text = _timestamps(out_at)
    consents, events = [], []
    for i in np.flatnonzero(has_wecom):
        cid = int(cids[i])
        events.append((cid, "wecom", "opted_in", "wecom", opted_in_text[i], opted_in_text[i]))
        if opted_out[i]:
            events.append((cid, "wecom", "opted_out", "wecom", out_text[i], out_text[i]))
            consents.append((cid, "wecom", "opted_out", "wecom", out_text[i]))
        else:
            consents.append((cid, "wecom", "opted_in", "wecom", opted_in_text[i]))
    first = _reserve_ids("crm_consent", len(consents))
    _copy(
        "crm_consent",
        ["id", "customer_id", "channel", "status", "source", "changed_at"],
        ((first + k, *row) for k, row in enumerate(consents)),
    )
    first = _reserve_ids("crm_consentevent", len(events))
    _copy(
        "crm_consentevent",
        ["id", "customer_id", "channel", "status", "source", "occurred_at", "recorded_at"],
        ((first + k, *row) for k, row in enumerate(events)),
    )
    counts["consents"] = counts.get("consents", 0) + len(consents)
    counts["consent_events"] = counts.get("consent_events", 0) + len(events)


def _write_tags(
    ctx: _Context,
    cids: np.ndarray,
    favourite: np.ndarray,
    aov: np.ndarray,
    n_orders: np.ndarray,
    first_seen: np.ndarray,
    counts: dict[str, int],
) -> None:
    rng = ctx.rng
    n = len(cids)
    tagged_at = _timestamps(
        np.minimum(first_seen + rng.uniform(0, 30 * 86400, n), ctx.as_of.timestamp() - 1)
    )
    has_interest = rng.random(n) < 0.65
    second_interest = rng.integers(len(INTEREST_TAGS), size=n)
    has_second = rng.random(n) < 0.3
    has_skin = rng.random(n) < 0.5
    skin = rng.choice(4, size=n, p=[0.3, 0.25, 0.3, 0.15])
    skin_names = TAG_GROUPS[2][3]
    interest_group = ctx.group_ids_by_tag_group["兴趣偏好"]
    power_group = ctx.group_ids_by_tag_group["消费能力"]
    skin_group = ctx.group_ids_by_tag_group["肤质"]
    del interest_group  # non-exclusive: exclusive_group stays NULL
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        cid = int(cids[i])
        if has_interest[i]:
            interests = {int(favourite[i])}
            if has_second[i]:
                interests.add(int(second_interest[i]))
            for interest in sorted(interests):
                tag = ctx.tag_ids[("兴趣偏好", INTEREST_TAGS[interest])]
                rows.append((cid, tag, None, "import", tagged_at[i]))
        if n_orders[i]:
            power = "高" if aov[i] >= 450 else "中" if aov[i] >= 220 else "低"
            rows.append((cid, ctx.tag_ids[("消费能力", power)], power_group, "rule", tagged_at[i]))
        if has_skin[i]:
            tag = ctx.tag_ids[("肤质", skin_names[skin[i]])]
            rows.append((cid, tag, skin_group, "manual", tagged_at[i]))
    first = _reserve_ids("crm_customertag", len(rows))
    _copy(
        "crm_customertag",
        ["id", "customer_id", "tag_id", "exclusive_group_id", "source", "tagged_at"],
        ((first + k, *row) for k, row in enumerate(rows)),
    )
    counts["customer_tags"] = counts.get("customer_tags", 0) + len(rows)


def _write_memberships(
    ctx: _Context,
    cids: np.ndarray,
    has_wecom: np.ndarray,
    first_seen: np.ndarray,
    counts: dict[str, int],
) -> None:
    rng = ctx.rng
    n = len(cids)
    end = ctx.as_of.timestamp() - 1
    in_groups = has_wecom & (rng.random(n) < 0.45)
    how_many = rng.choice([1, 2, 3], size=n, p=[0.7, 0.25, 0.05])
    rows: list[tuple[Any, ...]] = []
    for i in np.flatnonzero(in_groups):
        cid = int(cids[i])
        groups = sorted({int(g) for g in rng.choice(ctx.group_ids, size=how_many[i])})
        for group in groups:
            joined = min(first_seen[i] + rng.exponential(10 * 86400.0), end)
            if rng.random() < 0.2:  # left the group
                left = joined + rng.exponential(60 * 86400.0)
                if left < end:
                    rows.append((group, cid, joined, left))
                    if rng.random() < 0.25:  # and came back later
                        rejoined = left + rng.exponential(30 * 86400.0)
                        if rejoined < end:
                            rows.append((group, cid, rejoined, None))
                    continue
            rows.append((group, cid, joined, None))
    joined_text = _timestamps(np.array([row[2] for row in rows], dtype=float))
    left_text = _timestamps(np.array([row[3] if row[3] is not None else 0.0 for row in rows]))
    first = _reserve_ids("crm_groupmembership", len(rows))
    _copy(
        "crm_groupmembership",
        ["id", "group_id", "customer_id", "joined_at", "left_at"],
        (
            (first + k, group, cid, joined_text[k], left_text[k] if left is not None else None)
            for k, (group, cid, _, left) in enumerate(rows)
        ),
    )
    counts["group_memberships"] = counts.get("group_memberships", 0) + len(rows)


def _write_interactions(
    ctx: _Context,
    cids: np.ndarray,
    has_wecom: np.ndarray,
    n_orders: np.ndarray,
    first_day: np.ndarray,
    last_day: np.ndarray,
    first_seen: np.ndarray,
    counts: dict[str, int],
) -> None:
    """Replies, clicks, visits, live views, group messages and coupon claims: more for WeCom
    contacts and frequent buyers, within a customer's active span (and a tail after it), each
    customer leaning to one style of engagement so that behaviour clusters differ."""
    rng = ctx.interaction_rng
    n = len(cids)
    rate = np.where(has_wecom, 3.0, 0.8) + 1.2 * np.minimum(n_orders, 20)
    how_many = np.minimum(rng.poisson(rate), INTERACTIONS_PER_CUSTOMER_MAX)
    total = int(how_many.sum())
    owner_of = np.repeat(np.arange(n), how_many)
    style = rng.choice(len(INTERACTION_STYLES), size=n, p=[0.4, 0.3, 0.3])
    kind_of = np.empty(total, dtype=np.int64)
    draws = rng.random(total)
    for number, weights in enumerate(INTERACTION_STYLES):
        chosen = style[owner_of] == number
        cdf = np.cumsum(_normalised(weights))
        kind_of[chosen] = np.minimum(np.searchsorted(cdf, draws[chosen]), len(cdf) - 1)
    tail_end = np.minimum(last_day + 60, HISTORY_DAYS - 1)
    day = first_day[owner_of] + (rng.random(total) * (tail_end - first_day + 1)[owner_of])
    occurred = np.maximum(
        ctx.start_epoch + day.astype(np.int64) * 86400.0 + _time_of_day(rng, total),
        first_seen[owner_of],
    )
    occurred = np.minimum(occurred, ctx.as_of.timestamp() - 1)
    occurred_text = _timestamps(occurred)
    first = _reserve_ids("crm_interaction", total)
    kinds = [kind for kind, _source in INTERACTION_KINDS]
    sources = [source for _kind, source in INTERACTION_KINDS]
    _copy(
        "crm_interaction",
        [
            "id",
            "customer_id",
            "kind",
            "occurred_at",
            "properties",
            "source",
            "idempotency_key",
            "created_at",
        ],
        (
            (
                first + k,
                int(cids[owner_of[k]]),
                kinds[kind_of[k]],
                occurred_text[k],
                "{}",
                sources[kind_of[k]],
                f"demo-{first + k}",
                occurred_text[k],
            )
            for k in range(total)
        ),
    )
    counts["interactions"] = counts.get("interactions", 0) + total


# --- writing --------------------------------------------------------------------------------


def _reserve_ids(table: str, count: int) -> int:
    """Reserve `count` consecutive ids of `table` and return the first.

    Moves the table's sequence past max(id) + count; rows are then COPYed with explicit ids.
    """
    if count <= 0:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH next AS (
                SELECT GREATEST(
                    (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}),
                    nextval(pg_get_serial_sequence(%s, 'id'))
                ) AS first_id
            )
            SELECT first_id, setval(pg_get_serial_sequence(%s, 'id'), first_id + %s - 1)
            FROM next
            """,  # noqa: S608 - table names are constants of this module
            [table, table, count],
        )
        return int(cursor.fetchone()[0])


def _copy(table: str, columns: list[str], rows: Iterable[Sequence[Any]]) -> None:
    raw = connection.connection
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _timestamps(epoch_seconds: np.ndarray) -> list[str]:
    """UTC timestamptz literals for COPY (text form, whole seconds)."""
    if len(epoch_seconds) == 0:
        return []
    text = np.datetime_as_string(
        np.asarray(epoch_seconds, dtype=float).astype("datetime64[s]"), unit="s"
    )
    return [f"{value}+00" for value in text.tolist()]


def _normalised(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(weights, dtype=float)
    return array / array.sum()
