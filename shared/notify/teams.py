"""The Teams provider: a Power Automate workflow URL. Used by the alert function and the API's provider endpoints,
through shared.notify.PROVIDERS."""

from shared.notify.chat import ChatWebhookProvider

# Workflows only: Microsoft has retired Teams' Office 365 connectors.
provider = ChatWebhookProvider("Teams (Power Automate workflow)", {"NotifyWorkflows"})
