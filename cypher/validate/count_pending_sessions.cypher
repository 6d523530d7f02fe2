// name: validate/count_pending_sessions
// Sessions a load wrote without their aggregates yet (ingest/create_pending markers).
// params: $examples
// A marker lives for one transaction while a load runs; one that stays means the load was
// stopped between a chunk's two transactions, and the next load adds the aggregates.
MATCH (p:IngestPending)
WITH p ORDER BY p.created_at
RETURN count(p) AS markers, coalesce(sum(size(p.sessions)), 0) AS sessions,
       reduce(acc = [], ids IN collect(p.sessions[0..$examples]) | acc + ids)[0..$examples]
         AS examples
