//! Simulator of the YClients REST API.
