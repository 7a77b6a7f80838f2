"""The Slack provider: a Slack incoming-webhook URL. Used by the alert function and the API's provider endpoints,
through shared.notify.PROVIDERS."""

from shared.notify.chat import ChatWebhookProvider

provider = ChatWebhookProvider("Slack webhook", {"NotifySlack"})
