"""The audit log of admin changes: recording (`admin_api.audit.log`) and reading
(`admin_api.services.audit`)."""
