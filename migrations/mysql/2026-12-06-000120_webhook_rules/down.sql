DROP TABLE webhook_rule_matches;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_rules;
