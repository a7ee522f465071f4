"""What a question asks for, and whether a sentence holds that kind of thing.

The answer sentence of 剑涛智慧产业基地建成后能提供多少个就业岗位? is the one with a number
of 岗位 in it, not the lead sentence that repeats 剑涛智慧产业基地; the one of 十三届区纪委三次全会
由谁主持? names a person next to 主持. So the question word decides what kind of fact to look
for (:func:`asked_for`), and each candidate sentence is checked for a fact of that kind that
the question does not already state (:func:`holds`): a number with its unit for 多少/几/how
many, a date for 何时/when, a person or organisation for 谁/哪家/who, a place for 哪里/where,
an enumeration for 哪些, a cause for 为什么/why.

Plain patterns, no tagger: they run on a few dozen sentences per question in well under a
millisecond. Chinese and English questions alike (the passages are Chinese either way).
"""

from __future__ import annotations

import re
from typing import Literal

Kind = Literal["number", "date", "person", "org", "place", "list", "reason", "name"]

_CN_DIGITS = "零〇一二两三四五六七八九十百千万亿"
# A lone 一 before a measure word is an article, not a count (一件事, 一批企业, 一名男子); a
# lone magnitude is a name or a figure of speech (百度, 万家灯火) unless a word makes it a
# rough count (上万人, 数百家, 近千名, 百余人).
_LONE_ONE = rf"一(?![{_CN_DIGITS}])"
_LONE_MAGNITUDE = rf"[百千万亿](?![{_CN_DIGITS}余多])"
_NUM = (
    rf"(?:\d[\d,.]*|(?!{_LONE_ONE})(?:(?<=[上数近逾超几成])|(?!{_LONE_MAGNITUDE}))"
    rf"[{_CN_DIGITS}]+(?![年月日]))"
)
_UNITS = (
    r"%|％|‰|余|多|万|亿|千|百|个|家|人|名|位|元|块|美元|英镑|欧元|港元|日元|新台币|吨|公斤|"
    r"千克|克|斤|米|公里|千米|厘米|毫米|平方米|亩|公顷|度|千瓦|兆瓦|瓦|项|台|辆|架|艘|件|份|"
    r"套|条|次|起|例|倍|成|岁|年|天|小时|分钟|秒|周|月|所|座|栋|户|床|张|本|部|场|届|批|笔|"
    r"处|只|头|株|棵|篇|款|点|层|级|号|分|倍|摄氏度|℃|GB|MB|TB|km|kg|mm|cm|m|t"
)
_UNIT = rf"(?:{_UNITS})"
NUMBER = re.compile(rf"{_NUM}\s*{_UNIT}|\d+(?:\.\d+)?\s*%|第(?:\d+|[{_CN_DIGITS}]+)")
DATE = re.compile(
    r"\d{2,4}\s*年(?:\s*\d{1,2}\s*月)?|\d{1,2}\s*月\s*\d{1,2}\s*[日号]?|\d{1,2}\s*[日号]|"
    r"[上中下]旬|年[初底中末]|今年|去年|明年|前年|本月|上月|下月|今天|昨天|明天|当天|当日|"
    r"[上下]午|凌晨|傍晚|晚上|早上|周[一二三四五六日末]|星期[一二三四五六日天]|\d{1,2}\s*[时点]|"
    r"[一二三四五六七八九十]+月|春节|国庆|中秋|元旦|\d{4}"
)
_ORG_SUFFIX = (
    r"公司|集团|银行|医院|大学|学院|研究所|研究院|实验室|中心|协会|学会|委员会|基金会?|机构|"
    r"部门|政府|局|厅|署|办公室|法院|检察院|公安|海关|报社|电视台|出版社|学校|中学|小学|"
    r"幼儿园|工厂|厂|联盟|俱乐部|队|组织|平台|证券|信托|保险|投资|资本|控股|科技|股份"
)
ORG = re.compile(rf"[\u4e00-\u9fffA-Za-z0-9（）()·]{{1,20}}?(?:{_ORG_SUFFIX})")
_TITLE = (
    r"书记|主任|局长|厅长|部长|市长|区长|县长|省长|镇长|村长|主席|总理|总统|首相|董事长|总经理|"
    r"经理|院长|校长|所长|处长|科长|队长|组长|会长|理事长|秘书长|负责人|代表|法人|法定代表人|"
    r"教授|博士|医生|记者|通讯员|主持人|演员|导演|教练|球员|选手|运动员|老师|警官|民警|"
    r"律师|专家|研究员|工程师|行长|总裁|创始人|发言人|委员|常委|主委|首席|CEO|扮演者|饰演者|"
    r"作者|编辑|主编|冠军|得主|获得者|嫌疑人|当事人|志愿者|村民|市民|网友|工作人员"
)
PERSON = re.compile(
    rf"(?:{_TITLE})[\u4e00-\u9fff·\-]{{2,8}}|[\u4e00-\u9fff·\-]{{2,4}}(?:{_TITLE}|先生|女士|同志)|"
    r"[\u4e00-\u9fff]{1,5}[·\-－][\u4e00-\u9fff]{1,8}|(?:由|是|为)[\u4e00-\u9fff]{2,3}(?:主持|领投|"
    r"主罚|作|担任|介绍|表示|说|发言|带队|率队|宣布)"
)
PLACE = re.compile(
    r"[\u4e00-\u9fff0-9]{1,12}?(?:省|市|区|县|镇|乡|村|街道|社区|路|街|大道|小区|广场|站|港|"
    r"机场|园区|园|地块|号|楼|大厦|酒店|家中|国|州|岛|湖|江|河|山|洲)"
)
LIST = re.compile(
    r"[^，。；、]{1,20}、[^，。；、]{1,20}|[^，。；]{1,15}(?:和|及|与|以及)[^，。；]{1,15}"
)
REASON = re.compile(r"因为|由于|因此|因而|原因|导致|造成|系因|缘于|起因|为了|以便|是因|因")

CALENDAR = re.compile(
    r"(?:\d{4}\s*年)?\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*[日号])?|\d{1,2}\s*[日号]|\d{4}\s*年|"
    r"\d{1,2}[:：]\d{2}|\d{1,2}\s*时(?:\s*\d{1,2}\s*分)?"
)

PATTERNS: dict[Kind, re.Pattern[str]] = {
    "number": NUMBER,
    "date": DATE,
    "person": PERSON,
    "org": ORG,
    "place": PLACE,
    "list": LIST,
    "reason": REASON,
}


# Question cues, most specific first: the first kind whose cue matches is what is asked for
# (哪一年 is a date before 哪 is anything else; 多少钱 a number).
def _any(*words: str) -> str:
    return "|".join(words)


_ZH_CUES: list[tuple[Kind, re.Pattern[str]]] = [
    (k, re.compile(p))
    for k, p in (
        (
            "date",
            _any("何时", "什么时候", "什么时间", "哪一?[年天日]", "几月", "几号", "哪个月", "几点"),
        ),
        ("reason", _any("为什么", "为何", "什么原因", "原因是", "何故", "怎么会", "因为什么")),
        ("list", _any("哪些", "哪几", "哪[两三四五六]", "有什么", "包括什么", "包括哪")),
        ("person", _any("谁", "哪位", "什么人", "何人", "哪个人", "哪名", "哪一位")),
        (
            "org",
            _any(
                "哪家",
                "哪所",
                "哪支",
                "哪个(?:单位|机构|公司|部门|企业|组织|平台|基金|银行|医院|学校|团队|队)",
                "什么(?:单位|机构|公司|部门|企业|组织)",
            ),
        ),
        (
            "place",
            _any(
                "哪里",
                "哪儿",
                "在哪",
                "何地",
                "何处",
                "什么地方",
                "哪座",
                "哪条",
                "哪块",
                "哪个(?:城市|省|国家|地区|县|区|市|镇|村|地方|小区|站|港)",
            ),
        ),
        (
            "number",
            _any("多少", "几", "多[大高长远重深宽久快]", "比例", "比重", "占比", "百分之", "幅度"),
        ),
        ("name", _any("叫什么", "什么名字", "名称", "哪个", "哪一", "哪种", "什么")),
    )
]
_EN_NOUNS = {
    "person": "person|official|player|actor|actress|leader|minister|head|chief|director|man|"
    "woman|child|star|singer|athlete|author|writer|founder|coach|mayor|secretary|president",
    "org": "company|firm|organi[sz]ation|institution|bank|hospital|university|school|agency|"
    "body|team|club|fund|platform|department|unit|group|brand|institute|media|outlet",
    "place": "city|province|country|district|county|town|village|street|place|station|"
    "airport|port|region|area|road|venue|location",
    "number": "percentage|proportion|share|price|amount|number|rate|fine|sum|total|size|area|"
    "capacity|bandwidth|cost|revenue|profit|value|height|length|distance|speed|temperature",
}
_EN_CUES: list[tuple[Kind, re.Pattern[str]]] = [
    (k, re.compile(p, re.I))
    for k, p in (
        ("date", r"\bwhen\b|\b(?:what|which) (?:year|date|day|month|time)\b|\baround when\b"),
        (
            "reason",
            r"\bwhy\b|\bwhat (?:caused|led to)\b|\bfor what reason\b|\bwhat was the reason\b",
        ),
        (
            "number",
            r"\bhow (?:many|much|long|far|large|big|old|tall|high|fast|often)\b|\bby how much\b"
            rf"|\bwhat(?: \w+){{0,3}} (?:{_EN_NOUNS['number']})\b",
        ),
        ("list", r"\b(?:which|what) (?:two|three|four|five|six)\b"),
        ("person", rf"\bwho(?:m|se)?\b|\bwhich(?: \w+)? (?:{_EN_NOUNS['person']})\b"),
        ("org", rf"\b(?:which|what)(?: \w+)? (?:{_EN_NOUNS['org']})\b"),
        ("place", rf"\bwhere\b|\b(?:which|what) (?:{_EN_NOUNS['place']})\b|\bin which\b"),
        ("name", r"\bwhat is the name\b|\bwhat\b|\bwhich\b|\bname\b"),
    )
]


def is_english(text: str) -> bool:
    """Mostly Latin letters: an English question (it may quote a Chinese name)."""
    latin = sum(ch.isascii() and ch.isalpha() for ch in text)
    cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in text)
    return latin > 2 * cjk


def _cues(question: str) -> list[tuple[Kind, re.Pattern[str]]]:
    return _EN_CUES if is_english(question) else _ZH_CUES


def asked_for(question: str) -> Kind | None:
    """The kind of fact the question asks for; None when no question word says."""
    for kind, cue in _cues(question):
        if cue.search(question):
            return kind
    return None


def cue_spans(question: str) -> list[tuple[int, int]]:
    """Where the question words of the asked-for kind stand in the question (the slot the
    answer fills is next to them)."""
    for _, cue in _cues(question):
        spans = [m.span() for m in cue.finditer(question)]
        if spans:
            return spans
    return []


# The measure a 多少/几 question names (多少年, 几项, 多少钱) is the unit its answer carries:
# 480多年 answers 活了多少年, 这6位战士 does not. 个 is every noun's measure word and names none.
_MONEY = ("元", "万", "亿", "美元", "英镑", "欧元", "港元", "日元", "块")
_DURATION = ("年", "天", "小时", "分钟", "秒", "周", "月", "日")
_UNIT_ALIASES: dict[str, tuple[str, ...]] = {
    "钱": _MONEY,
    "块钱": _MONEY,
    "元": _MONEY,
    "人": ("人", "名", "位"),
    "名": ("人", "名", "位"),
    "位": ("人", "名", "位"),
    "久": _DURATION,
    "长时间": _DURATION,
}
_PERCENT = ("%", "％", "成")
_ASKED_UNIT = re.compile(rf"(?:多少|几)\s*({_UNITS}|钱|块钱)|多(久|长时间)")
_ASKED_SHARE = re.compile(r"比例|比重|占比|百分比|百分之几|几成")  # a share: 11%, 三成
UNIT_REACH = 3  # characters after a number where its unit may stand (480多年, 3.5万元)


def asked_units(question: str) -> tuple[str, ...] | None:
    """The units an answer to a 多少/几 question carries (多少年 -> 年; 多少钱 -> 元, 万, …;
    多少比例 -> %); None when the question names no measure (多少个岗位, any English
    question)."""
    if _ASKED_SHARE.search(question):
        return _PERCENT
    m = _ASKED_UNIT.search(question)
    if m is None:
        return None
    unit = m.group(1) or m.group(2)
    if unit in ("个", "多", "余"):
        return None
    return _UNIT_ALIASES.get(unit, (unit,))


def facts(
    kind: Kind | None, text: str, units: tuple[str, ...] | None = None
) -> list[tuple[int, int]]:
    """Spans of ``text`` that are facts of this kind (none for None or ``name``); a date is
    not a quantity (8月16日 does not answer 多少), and where the question names ``units``
    (``asked_units``) a number carries one of them."""
    pattern = PATTERNS.get(kind) if kind else None
    if pattern is None:
        return []
    spans = [m.span() for m in pattern.finditer(text)]
    if kind == "number":
        dates = [m.span() for m in CALENDAR.finditer(text)]
        spans = [(s, e) for s, e in spans if not any(ds <= s and e <= de for ds, de in dates)]
        if units:
            spans = [(s, e) for s, e in spans if any(u in text[s : e + UNIT_REACH] for u in units)]
    if kind == "org":  # an organisation may be written as a person-like credit too
        spans += [m.span() for m in PERSON.finditer(text) if "由" in m.group()]
    return spans


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def holds(
    kind: Kind | None, sentence: str, question: str, units: tuple[str, ...] | None = None
) -> float:
    """1.0 when ``sentence`` holds a fact of the asked-for kind that the question does not
    already state (a number the question quotes is not an answer to it), 0.5 when the only
    such facts are echoes of the question, 0.0 when there is none; 0.0 for unknown kinds."""
    return holds_new_fact(facts(kind, sentence, units), sentence, question)


def holds_new_fact(spans: list[tuple[int, int]], sentence: str, question: str) -> float:
    """``holds`` over the fact spans already found in ``sentence`` (``facts``)."""
    if not spans:
        return 0.0
    return 1.0 if new_facts(spans, sentence, question) else 0.5


def new_facts(spans: list[tuple[int, int]], sentence: str, question: str) -> list[tuple[int, int]]:
    """The fact spans of ``sentence`` that the question does not already state."""
    asked = _squash(question)
    return [(s, e) for s, e in spans if (fact := _squash(sentence[s:e])) and fact not in asked]
