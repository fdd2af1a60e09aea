"""The admin view of each entity: its row as the protobuf message the admin API answers
with, one module per entity (and the JSON columns some of them store). Write-only values
never appear: secrets as *_set flags, API keys and consumer secrets only masked."""
