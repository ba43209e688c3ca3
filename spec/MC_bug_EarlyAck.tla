--------------------------- MODULE MC_bug_EarlyAck ----------------------------
(*
  Bug configuration: 3 sync nodes x 2 store nodes with the EarlyAck bug
  switched on. The checker is expected to report a violation of
  OutputPrefixInv: the primary acknowledges a write before the backup has
  it, and the leader appends it to the output file before it is committed.
*)
EXTENDS Cluster

\* @type: Set(Str);
MC_SyncNodes == {"n1", "n2", "n3"}
\* @type: Set(Str);
MC_StoreNodes == {"s1", "s2"}
\* @type: Set(Str);
MC_Clients == {"c1"}
MC_MaxTerm == 1
MC_MaxEpoch == 1
MC_MaxLogLen == 1
MC_MaxRequests == 1
MC_MaxCopies == 1
MC_MaxFaults == 0
\* @type: Set(Str);
MC_BUGS == {"EarlyAck"}

\* TLC only: at most this many distinct messages in transit.
MC_Constraint == Cardinality(DOMAIN msgs) <= 3
===============================================================================
