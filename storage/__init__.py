"""Ports and adapters for durable state: the object store (originals, derivatives, manifests) and the
catalog + search index. Embedded defaults live here; server backends (MinIO, Elasticsearch) plug in behind
the same interfaces."""
