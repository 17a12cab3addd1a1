"""The one road to Slack for everything that posts or updates a message or a Home tab.

effects.py decides (pure) which jobs a change causes, jobs.py types them, store/outbox.py queues
them in the transaction of the change, deliver.py sends them through bot/slack/gateway.py.
"""
