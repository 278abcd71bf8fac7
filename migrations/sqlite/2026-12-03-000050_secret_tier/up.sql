-- Which of Ansible's two inventory tiers a secret sits in (issue 9), as
-- `variables.tier`: 1 vars file (group_vars/, host_vars/; what the API
-- creates), 0 inline (an inline `!vault` value imported from an inventory
-- file), so that a secret ranks exactly where its source ranked.
ALTER TABLE secrets ADD COLUMN tier INTEGER NOT NULL DEFAULT 1;
