"""REDCap: read a project's data dictionary and flat records export (file or API) into typed frames per instrument."""
