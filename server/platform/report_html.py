"""The credit report as a printable HTML page (Chinese labels), rendered with Jinja2.

The page is made from the same :class:`~server.platform.schemas.CreditReportOut`
the JSON answer is, so the two can never disagree: masking, refusals, data
dates, disputes and repairs are decided once, in the route. Autoescaping is
on — provider-delivered text (names, remarks, repair reasons) is data, not
markup. The template lives here rather than in a separate file so that it
ships with the package whatever the install method.
"""

from __future__ import annotations

from jinja2 import Environment, StrictUndefined

from lab.catalog import Kind, get_item
from server.platform.schemas import CreditReportOut

__all__ = ["render_report"]

PURPOSE_ZH = {
    "loan_approval": "贷款审批",
    "post_loan_monitoring": "贷后管理",
    "guarantee_review": "担保审查",
}
STATUS_ZH = {"shown": "已展示", "not_authorized": "未经授权，不予展示", "no_records": "无记录"}

#: Bookkeeping fields not repeated in every row of the tables.
_HIDDEN_COLUMNS = ("data_code", "enterprise_name", "uscc", "remarks")

_TEMPLATE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>公共信用信息报告 — {{ report.name or report.subject }}</title>
<style>
  body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
         "Microsoft YaHei", sans-serif; margin: 24px 32px; color: #1a1a1a; font-size: 14px; }
  h1 { font-size: 24px; margin: 0 0 4px; }
  h2 { font-size: 17px; margin: 22px 0 6px; border-bottom: 2px solid #2b5797; padding-bottom: 3px; }
  .sub { color: #555; margin-bottom: 14px; }
  table { border-collapse: collapse; margin: 6px 0 10px; }
  th, td { border: 1px solid #bbb; padding: 3px 7px; text-align: left; vertical-align: top; }
  th { background: #eef2f8; font-weight: 600; }
  table.meta th { width: 9em; }
  .status { display: inline-block; padding: 1px 8px; border-radius: 3px; font-size: 13px; }
  .shown { background: #e3f4e3; } .not_authorized { background: #fbe3e3; }
  .no_records { background: #eee; }
  .masked { color: #8a5a00; font-size: 13px; }
  .disputed { color: #b00020; font-weight: 600; }
  .note { color: #555; font-size: 12px; margin-top: 24px; }
</style>
</head>
<body>
<h1>公共信用信息报告</h1>
<div class="sub">天津市融资信用服务平台 · 报告编号 {{ report.request_id }}</div>
<table class="meta">
  <tr><th>信息主体</th><td>{{ report.name or "（未登记名称）" }}</td></tr>
  <tr><th>{{ "统一社会信用代码" if report.subject_kind == "uscc" else "证件号码" }}</th>
      <td>{{ report.subject }}</td></tr>
  <tr><th>查询机构</th><td>{{ report.institution_name }}</td></tr>
  <tr><th>查询用途</th><td>{{ purpose_zh[report.purpose.value] }}</td></tr>
  <tr><th>授权编号</th>
      <td>{{ report.authorization_ids | join("，") or "无（敏感字段已脱敏）" }}</td></tr>
  <tr><th>报告时间</th><td>{{ report.generated_at.strftime("%Y-%m-%d %H:%M:%S") }} UTC</td></tr>
</table>
{% for item in report.items %}
<h2>{{ item.item }}. {{ item.name_zh }}（{{ item.category_zh }}）</h2>
<div>数据提供单位：{{ item.providers | join("、") }}
  <span class="status {{ item.status }}">{{ status_zh[item.status] }}</span>
  {% if item.status == "shown" and item.masked and item.sensitive_fields %}
  <span class="masked">敏感字段已脱敏（未获信息主体授权）</span>{% endif %}
</div>
{% if item.data_dates %}<div>数据日期：{{ item.data_dates.earliest }}
  至 {{ item.data_dates.latest }}，共 {{ item.records | length }} 条记录</div>{% endif %}
{% if item.records %}
<table>
  <tr><th>数据日期</th>{% for name in columns(item) %}<th>{{ item.labels[name] }}</th>{% endfor %}
      <th>异议</th></tr>
  {% for record in item.records %}
  <tr><td>{{ record.data_date }}</td>
      {% for name in columns(item) %}<td>{{ cell(item.item, name, record.values[name]) }}</td>
      {% endfor %}
      <td>{% if record.disputed %}<span class="disputed">异议处理中</span>{% endif %}</td></tr>
  {% endfor %}
</table>
{% endif %}
{% if item.disputes %}<div>异议记录：</div>
<ul>{% for e in item.disputes %}
<li>{{ e.at.strftime("%Y-%m-%d") }} {{ action_zh(e.action) }}：{{ e.reason }}</li>
{% endfor %}</ul>{% endif %}
{% if item.repairs or item.withdrawn_records %}<div>更正与信用修复：{% if item.withdrawn_records %}
  {{ item.withdrawn_records }} 条记录已信用修复，不再展示{% endif %}</div>
<ul>{% for e in item.repairs %}
<li>{{ e.at.strftime("%Y-%m-%d") }} {{ action_zh(e.action) }}：{{ e.reason }}</li>
{% endfor %}</ul>{% endif %}
{% endfor %}
<p class="note">说明：本报告仅含平台归集的公共信用信息；
信用评分由金融机构自行计算，不属于本报告内容。
敏感信息（个人信息、账户号码、地址）未经信息主体授权一律脱敏展示。
对报告内容有异议的，可向平台提出异议申请。</p>
</body>
</html>
"""

_ENV = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                   lstrip_blocks=True)
_COMPILED = _ENV.from_string(_TEMPLATE)


def _columns(item) -> list[str]:  # noqa: ANN001 - an ItemRecordsOut
    return [name for name in item.labels if name not in _HIDDEN_COLUMNS]


#: Chinese names of the store's record actions, matched by keyword (first match wins).
_ACTIONS_ZH = (("resolve", "异议处理完毕"), ("dispute", "提出异议"), ("objection", "提出异议"),
               ("correct", "更正"), ("withdraw", "信用修复（记录撤销）"),
               ("repair", "信用修复"), ("supersede", "更正"))


def _action_zh(action: str) -> str:
    name = action.lower()
    return next((zh for word, zh in _ACTIONS_ZH if word in name), action)


def _cell(item: int, name: str, value: object) -> str:
    """A cell as a reader expects it: 是/否, money with two decimals (SQLite hands
    whole amounts back as integers), masked text as it is."""
    if value is None:
        return ""
    if value is True:
        return "是"
    if value is False:
        return "否"
    kind = get_item(item).field(name).kind
    if kind is Kind.AMOUNT and isinstance(value, int | float):
        return f"{value:,.2f}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def render_report(report: CreditReportOut) -> str:
    """The report as one self-contained HTML page."""
    return _COMPILED.render(report=report, purpose_zh=PURPOSE_ZH, status_zh=STATUS_ZH,
                            columns=_columns, cell=_cell, action_zh=_action_zh)
