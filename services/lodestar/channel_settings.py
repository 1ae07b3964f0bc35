"""Provider settings of the SMS, push, voice and custom senders, from ``LODESTAR_*`` variables.

``ChannelSettings.from_env(env)`` resolves them once; ``Settings.channels``
holds the value. Every variable is in ``CHANNEL_SETTINGS`` (part of the README's
settings table). Secrets never appear in ``repr``. Files named here (service
account, .p8 key, routing and price tables) are read when a sender starts, by
``lodestar.channels.factory``, which says which variable to fix when one is
missing or malformed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from lodestar.core.sms_keywords import DEFAULT_HELP_TEXT

CHANNEL_SETTINGS_ROWS: tuple[tuple[str, str, str], ...] = (
    ("LODESTAR_PROVIDER_TIMEOUT_SECONDS", "10",
     "Timeout of each HTTP call to an SMS, push, voice or webhook provider."),
    ("LODESTAR_PRICE_TABLE", "(built-in prices)",
     "JSON file overlaying the price table (millicents USD per channel and country; "
     "docs/sms.md)."),
    ("LODESTAR_TWILIO_ACCOUNT_SID", "(unset)",
     "Twilio account for SMS (`LODESTAR_SMS_PROVIDER=twilio`) and voice calls."),
    ("LODESTAR_TWILIO_AUTH_TOKEN", "(unset)",
     "Twilio auth token: sends, and checks X-Twilio-Signature on inbound SMS (STOP/HELP)."),
    ("LODESTAR_TWILIO_BASE_URL", "https://api.twilio.com", "Twilio API base URL."),
    ("LODESTAR_SMS_PROVIDER", "twilio", "SMS provider: `twilio` or `generic`."),
    ("LODESTAR_SMS_GENERIC_CONFIG", "(unset)",
     "JSON file describing the generic HTTP SMS provider (URL, fields, auth, how its "
     "delivery receipts read; docs/sms.md). The API reads it too, for the receipts."),
    ("LODESTAR_SMS_MESSAGING_SERVICE_SID", "(unset)",
     "Twilio Messaging Service to send SMS through instead of a From number."),
    ("LODESTAR_SMS_STATUS_CALLBACK_URL", "(unset)",
     "Public base URL of the API for delivery receipts: each SMS asks Twilio to report "
     "its status to `<base>/sms/status/twilio/<app>?m=<message id>` (a generic provider: "
     "`<base>/sms/status/generic/<app>?t=…&m=…`, when its config names a status_callback "
     "field); unset: none."),
    ("LODESTAR_SMS_ROUTING", "(unset)",
     "JSON file of origination identities and per-country rules (docs/sms.md); unset: "
     "SMS can only use a request's own OriginationNumber/SenderId."),
    ("LODESTAR_SMS_MESSAGE_TYPE", "TRANSACTIONAL",
     "SMS message type when a request gives none (TRANSACTIONAL or PROMOTIONAL)."),
    ("LODESTAR_SMS_HELP_TEXT", DEFAULT_HELP_TEXT, "Reply to an inbound HELP."),
    ("LODESTAR_SMS_INBOUND_BASE_URL", "(unset)",
     "Public scheme and host Twilio calls for inbound SMS, when behind a proxy."),
    ("LODESTAR_FCM_SERVICE_ACCOUNT_FILE", "(unset)",
     "Firebase service-account JSON key; unset: no FCM (GCM) pushes."),
    ("LODESTAR_FCM_BASE_URL", "https://fcm.googleapis.com", "FCM API base URL."),
    ("LODESTAR_FCM_TOKEN_URI", "(the service account's)",
     "OAuth2 token endpoint overriding the service account's token_uri."),
    ("LODESTAR_APNS_KEY_FILE", "(unset)",
     "APNs token-auth .p8 key; unset: no APNs pushes. Needs the three below."),
    ("LODESTAR_APNS_KEY_ID", "(unset)", "Key id of the .p8 key."),
    ("LODESTAR_APNS_TEAM_ID", "(unset)", "Apple developer team id."),
    ("LODESTAR_APNS_TOPIC", "(unset)", "The app's bundle id (apns-topic)."),
    ("LODESTAR_APNS_PRODUCTION_URL", "https://api.push.apple.com", "APNs production base URL."),
    ("LODESTAR_APNS_SANDBOX_URL", "https://api.sandbox.push.apple.com",
     "APNs sandbox base URL (APNS_SANDBOX endpoints)."),
    ("LODESTAR_APNS_CA_FILE", "(system CAs)",
     "CA bundle to verify the APNs server with (a local test peer)."),
    ("LODESTAR_WEBPUSH_VAPID_PRIVATE_KEY", "(unset)",
     "VAPID P-256 key (PEM or base64url); unset: no Web Push."),
    ("LODESTAR_WEBPUSH_VAPID_SUBJECT", "(unset)",
     "`mailto:` or `https:` contact sent in VAPID tokens (required with Web Push)."),
    ("LODESTAR_ADM_CLIENT_ID", "(unset)",
     "Amazon Device Messaging OAuth client id; unset: no ADM pushes. Needs the secret below."),
    ("LODESTAR_ADM_CLIENT_SECRET", "(unset)", "ADM OAuth client secret."),
    ("LODESTAR_ADM_BASE_URL", "https://api.amazon.com", "ADM API base URL."),
    ("LODESTAR_ADM_TOKEN_URL", "(LODESTAR_ADM_BASE_URL/auth/o2/token)",
     "ADM OAuth2 token endpoint."),
    ("LODESTAR_BAIDU_API_KEY", "(unset)",
     "Baidu Cloud Push api key; unset: no Baidu pushes. Needs the secret key below."),
    ("LODESTAR_BAIDU_SECRET_KEY", "(unset)", "Baidu Cloud Push secret key (signs requests)."),
    ("LODESTAR_BAIDU_BASE_URL", "https://api.tuisong.baidu.com/rest/3.0",
     "Baidu Cloud Push REST API 3.0 base URL."),
    ("LODESTAR_VOICE_ORIGINATION_NUMBER", "(unset)",
     "Number voice calls come from when the message has none."),
    ("LODESTAR_VOICE_DEFAULT_LANGUAGE", "en-US", "Language of `<Say>` when none is given."),
    ("LODESTAR_VOICE_DEFAULT_VOICE", "Joanna", "Polly voice for the default language."),
    ("LODESTAR_VOICE_STATUS_CALLBACK_URL", "(unset)",
     "Public base URL of the API for call outcomes: each call asks Twilio to report its end "
     "to `<base>/voice/status/twilio/<app>?m=<message id>`; unset: none."),
    ("LODESTAR_SNS_VERIFY_SIGNATURES", "true",
     "Verify the signature of SNS messages posted to the email feedback route; false only "
     "behind a forwarder that re-wraps them (docs/feedback-and-suppression.md)."),
    ("LODESTAR_SNS_CERT_HOST_PATTERN", "(none)",
     "Tests only: regular expression of further hosts an SNS SigningCertURL may name "
     "besides `sns.<region>.amazonaws.com`."),
    ("LODESTAR_WEBHOOK_MASTER_KEY", "(unset)",
     "Key the per-app webhook signing secrets are derived from; required by the custom "
     "sender (docs/voice-and-custom.md)."),
    ("LODESTAR_WEBHOOK_ALLOW", "(none)",
     "Comma-separated hosts, IPs or CIDRs webhooks may reach although not public."),
    ("LODESTAR_WEBHOOK_ALLOW_HTTP", "false", "Allow http:// webhooks (development only)."),
)


class ChannelSettingsError(ValueError):
    """A channel variable holds a value that cannot be used."""


def _opt(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _default(name: str) -> str:
    return next(d for n, d, _ in CHANNEL_SETTINGS_ROWS if n == name)


def _get(env: Mapping[str, str], name: str) -> str:
    return _opt(env, name) or _default(name)


@dataclass(frozen=True)
class ChannelSettings:
    provider_timeout_seconds: float = 10.0
    price_table_file: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_base_url: str = "https://api.twilio.com"
    sms_provider: str = "twilio"
    sms_generic_config_file: str | None = None
    sms_messaging_service_sid: str | None = None
    sms_status_callback_url: str | None = None
    sms_routing_file: str | None = None
    sms_message_type: str = "TRANSACTIONAL"
    sms_help_text: str = DEFAULT_HELP_TEXT
    sms_inbound_base_url: str | None = None
    fcm_service_account_file: str | None = None
    fcm_base_url: str = "https://fcm.googleapis.com"
    fcm_token_uri: str | None = None
    apns_key_file: str | None = None
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_topic: str | None = None
    apns_production_url: str = "https://api.push.apple.com"
    apns_sandbox_url: str = "https://api.sandbox.push.apple.com"
    apns_ca_file: str | None = None
    webpush_vapid_private_key: str | None = field(default=None, repr=False)
    webpush_vapid_subject: str | None = None
    adm_client_id: str | None = None
    adm_client_secret: str | None = field(default=None, repr=False)
    adm_base_url: str = "https://api.amazon.com"
    adm_token_url: str | None = None
    baidu_api_key: str | None = None
    baidu_secret_key: str | None = field(default=None, repr=False)
    baidu_base_url: str = "https://api.tuisong.baidu.com/rest/3.0"
    voice_origination_number: str | None = None
    voice_default_language: str = "en-US"
    voice_default_voice: str | None = "Joanna"
    voice_status_callback_url: str | None = None
    sns_verify_signatures: bool = True
    sns_cert_host_pattern: str | None = None
    webhook_master_key: str | None = field(default=None, repr=False)
    webhook_allow: tuple[str, ...] = ()
    webhook_allow_http: bool = False

    @property
    def sms_twilio_auth_token(self) -> str | None:
        """The inbound-SMS route's name for the Twilio auth token."""
        return self.twilio_auth_token

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ChannelSettings:
        raw_timeout = _get(env, "LODESTAR_PROVIDER_TIMEOUT_SECONDS")
        try:
            timeout = float(raw_timeout)
        except ValueError:
            timeout = -1.0
        if not timeout > 0:
            raise ChannelSettingsError(
                f"LODESTAR_PROVIDER_TIMEOUT_SECONDS must be a positive number, got {raw_timeout!r}")
        provider = _get(env, "LODESTAR_SMS_PROVIDER").lower()
        if provider not in ("twilio", "generic"):
            raise ChannelSettingsError(
                f"LODESTAR_SMS_PROVIDER must be twilio or generic, got {provider!r}")
        message_type = _get(env, "LODESTAR_SMS_MESSAGE_TYPE").upper()
        if message_type not in ("TRANSACTIONAL", "PROMOTIONAL"):
            raise ChannelSettingsError(
                "LODESTAR_SMS_MESSAGE_TYPE must be TRANSACTIONAL or PROMOTIONAL, "
                f"got {message_type!r}")
        allow_http = _get(env, "LODESTAR_WEBHOOK_ALLOW_HTTP").lower()
        if allow_http not in ("true", "false", "1", "0", "yes", "no"):
            raise ChannelSettingsError(
                f"LODESTAR_WEBHOOK_ALLOW_HTTP must be true or false, got {allow_http!r}")
        verify_sns = _get(env, "LODESTAR_SNS_VERIFY_SIGNATURES").lower()
        if verify_sns not in ("true", "false", "1", "0", "yes", "no"):
            raise ChannelSettingsError(
                f"LODESTAR_SNS_VERIFY_SIGNATURES must be true or false, got {verify_sns!r}")
        cert_host = _opt(env, "LODESTAR_SNS_CERT_HOST_PATTERN")
        if cert_host is not None:
            try:
                re.compile(cert_host)
            except re.error as exc:
                raise ChannelSettingsError(
                    f"LODESTAR_SNS_CERT_HOST_PATTERN is not a regular expression: {exc}"
                ) from None
        allow = tuple(e.strip() for e in (_opt(env, "LODESTAR_WEBHOOK_ALLOW") or "").split(",")
                      if e.strip())
        return cls(
            provider_timeout_seconds=timeout,
            price_table_file=_opt(env, "LODESTAR_PRICE_TABLE"),
            twilio_account_sid=_opt(env, "LODESTAR_TWILIO_ACCOUNT_SID"),
            twilio_auth_token=_opt(env, "LODESTAR_TWILIO_AUTH_TOKEN"),
            twilio_base_url=_get(env, "LODESTAR_TWILIO_BASE_URL").rstrip("/"),
            sms_provider=provider,
            sms_generic_config_file=_opt(env, "LODESTAR_SMS_GENERIC_CONFIG"),
            sms_messaging_service_sid=_opt(env, "LODESTAR_SMS_MESSAGING_SERVICE_SID"),
            sms_status_callback_url=_opt(env, "LODESTAR_SMS_STATUS_CALLBACK_URL"),
            sms_routing_file=_opt(env, "LODESTAR_SMS_ROUTING"),
            sms_message_type=message_type,
            sms_help_text=_get(env, "LODESTAR_SMS_HELP_TEXT"),
            sms_inbound_base_url=_opt(env, "LODESTAR_SMS_INBOUND_BASE_URL"),
            fcm_service_account_file=_opt(env, "LODESTAR_FCM_SERVICE_ACCOUNT_FILE"),
            fcm_base_url=_get(env, "LODESTAR_FCM_BASE_URL").rstrip("/"),
            fcm_token_uri=_opt(env, "LODESTAR_FCM_TOKEN_URI"),
            apns_key_file=_opt(env, "LODESTAR_APNS_KEY_FILE"),
            apns_key_id=_opt(env, "LODESTAR_APNS_KEY_ID"),
            apns_team_id=_opt(env, "LODESTAR_APNS_TEAM_ID"),
            apns_topic=_opt(env, "LODESTAR_APNS_TOPIC"),
            apns_production_url=_get(env, "LODESTAR_APNS_PRODUCTION_URL").rstrip("/"),
            apns_sandbox_url=_get(env, "LODESTAR_APNS_SANDBOX_URL").rstrip("/"),
            apns_ca_file=_opt(env, "LODESTAR_APNS_CA_FILE"),
            webpush_vapid_private_key=_opt(env, "LODESTAR_WEBPUSH_VAPID_PRIVATE_KEY"),
            webpush_vapid_subject=_opt(env, "LODESTAR_WEBPUSH_VAPID_SUBJECT"),
            adm_client_id=_opt(env, "LODESTAR_ADM_CLIENT_ID"),
            adm_client_secret=_opt(env, "LODESTAR_ADM_CLIENT_SECRET"),
            adm_base_url=_get(env, "LODESTAR_ADM_BASE_URL").rstrip("/"),
            adm_token_url=_opt(env, "LODESTAR_ADM_TOKEN_URL"),
            baidu_api_key=_opt(env, "LODESTAR_BAIDU_API_KEY"),
            baidu_secret_key=_opt(env, "LODESTAR_BAIDU_SECRET_KEY"),
            baidu_base_url=_get(env, "LODESTAR_BAIDU_BASE_URL").rstrip("/"),
            voice_origination_number=_opt(env, "LODESTAR_VOICE_ORIGINATION_NUMBER"),
            voice_default_language=_get(env, "LODESTAR_VOICE_DEFAULT_LANGUAGE"),
            voice_default_voice=_opt(env, "LODESTAR_VOICE_DEFAULT_VOICE") or "Joanna",
            voice_status_callback_url=_opt(env, "LODESTAR_VOICE_STATUS_CALLBACK_URL"),
            sns_verify_signatures=verify_sns in ("true", "1", "yes"),
            sns_cert_host_pattern=cert_host,
            webhook_master_key=_opt(env, "LODESTAR_WEBHOOK_MASTER_KEY"),
            webhook_allow=allow,
            webhook_allow_http=allow_http in ("true", "1", "yes"),
        )
