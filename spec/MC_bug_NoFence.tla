---------------------------- MODULE MC_bug_NoFence ----------------------------
(*
  Bug configuration: 3 sync nodes x 1 store node with the NoFence bug
  switched on. The checker is expected to report a violation of
  EpochFencingInv: the leader of term 1 appends to the output file after the
  leader of term 2 wrote the fence.
*)
EXTENDS Cluster

\* @type: Set(Str);
MC_SyncNodes == {"n1", "n2", "n3"}
\* @type: Set(Str);
MC_StoreNodes == {"s1"}
\* @type: Set(Str);
MC_Clients == {"c1"}
MC_MaxTerm == 2
MC_MaxEpoch == 2
MC_MaxLogLen == 1
MC_MaxRequests == 1
MC_MaxCopies == 1
MC_MaxFaults == 0
\* @type: Set(Str);
MC_BUGS == {"NoFence"}

\* TLC only: at most this many distinct messages in transit.
MC_Constraint == Cardinality(DOMAIN msgs) <= 3
===============================================================================
