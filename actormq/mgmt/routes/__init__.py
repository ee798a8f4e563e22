"""The management API's route modules; see `actormq.mgmt.app` for how to add one."""
