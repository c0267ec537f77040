"""Staff accounts, roles, login + MFA and the audit log (arrives with the console issue)."""
