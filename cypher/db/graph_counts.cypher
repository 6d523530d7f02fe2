// name: db/graph_counts
// Node counts per label and relationship counts per type, from the count store (no scan).
// params:
CALL db.stats.retrieve('GRAPH COUNTS') YIELD data
RETURN [n IN data.nodes WHERE n.label IS NOT NULL | {label: n.label, count: n.count}] AS labels,
       [r IN data.relationships WHERE r.relationshipType IS NOT NULL AND r.startLabel IS NULL AND r.endLabel IS NULL | {type: r.relationshipType, count: r.count}] AS types,
       [n IN data.nodes WHERE n.label IS NULL | n.count][0] AS total_nodes
