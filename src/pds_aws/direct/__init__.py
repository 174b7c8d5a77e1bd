"""The direct edge: no load balancer, a TLS proxy in the task, DNS that follows the task.

caddy.py builds the proxy's configuration from routes.py; tls.py keeps the wildcard
certificate (certbot, DNS-01 on Route 53); dns_updater/ points the records at a new task;
construct.py and health_stack.py are the CDK side.
"""
