"""A local Slack: the Web API, response_urls, and a client that sends an app signed requests as Slack does.

Why a fake at the wire rather than patching slack_sdk: the bot's own AsyncWebClient, Bolt's signature
check and ack handling, and Slack's rules (DM channel ids, trigger_id expiry, Block Kit limits, rate
limits, response_url use counts) are then exercised exactly as in production. bolt-python's
tests/mock_web_api_server is the model; unlike it, this one keeps state (messages with their edit
history, ephemerals, views, the Home tab) so a test reads what a user would see, and a click can only
press a button the current message really shows.

Used by the bot's tests and by `approvals-bot demo` (which also offers /sandbox/messages and
/sandbox/click so a person can drive it with curl).
"""

from __future__ import annotations

from bot.sandbox.slack_blocks import (
    block_problems,
    button_labels,
    find_button,
    state_values,
    view_problems,
)
from bot.sandbox.slack_model import (
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_TOKEN,
    BOT_USER_ID,
    CALLBACK_ID_MAX,
    DEFAULT_SCOPES,
    EXTERNAL_ID_MAX,
    FORM,
    JSON,
    MESSAGE_BLOCKS_MAX,
    METHOD_SCOPES,
    PRIVATE_METADATA_MAX,
    RATED_METHODS,
    RESPONSE_URL_TTL,
    RESPONSE_URL_USES,
    SIGNING_SECRET,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    TEXT_MAX,
    TRIGGER_TTL,
    TZ_LABELS,
    VERIFICATION_TOKEN,
    VIEW_BLOCKS_MAX,
    VIEW_BYTES_MAX,
    VIEW_STACK_MAX,
    VIEW_TEXT_MAX,
    AppReply,
    Call,
    Channel,
    Clock,
    Ephemeral,
    OnPost,
    ResponsePost,
    Revision,
    SandboxError,
    StoredMessage,
    StoredView,
    SubmitResult,
    default_channels,
)
from bot.sandbox.slack_page import PageSurface

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_NAME",
    "BOT_TOKEN",
    "BOT_USER_ID",
    "CALLBACK_ID_MAX",
    "DEFAULT_SCOPES",
    "EXTERNAL_ID_MAX",
    "FORM",
    "JSON",
    "MESSAGE_BLOCKS_MAX",
    "METHOD_SCOPES",
    "PRIVATE_METADATA_MAX",
    "RATED_METHODS",
    "RESPONSE_URL_TTL",
    "RESPONSE_URL_USES",
    "SIGNING_SECRET",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "TEAM_NAME",
    "TEXT_MAX",
    "TRIGGER_TTL",
    "TZ_LABELS",
    "VERIFICATION_TOKEN",
    "VIEW_BLOCKS_MAX",
    "VIEW_BYTES_MAX",
    "VIEW_STACK_MAX",
    "VIEW_TEXT_MAX",
    "AppReply",
    "Call",
    "Channel",
    "Clock",
    "Ephemeral",
    "OnPost",
    "ResponsePost",
    "Revision",
    "SandboxError",
    "SlackSandbox",
    "StoredMessage",
    "StoredView",
    "SubmitResult",
    "block_problems",
    "button_labels",
    "default_channels",
    "find_button",
    "state_values",
    "view_problems",
]


class SlackSandbox(PageSurface):
    """Slack as an app sees it, on 127.0.0.1.

    Web API at `api_url` (give it to AsyncWebClient as base_url), response_urls at `<url>/response/<id>`,
    a Slack-like page for people at `<url>/` (plain text at `<url>/sandbox`). The client half
    (`click`, `submit_view`, `command`, `event`, …) sends the app signed requests shaped like Slack's.
    """
