-------------------------- MODULE MC_bug_DoubleVote ---------------------------
(*
  Bug configuration: 3 sync nodes x 1 store node with the DoubleVote bug
  switched on. The checker is expected to report a violation of
  ElectionSafetyInv: a voter grants a second vote in term 1, so two
  candidates become leader of term 1.
*)
EXTENDS Cluster

\* @type: Set(Str);
MC_SyncNodes == {"n1", "n2", "n3"}
\* @type: Set(Str);
MC_StoreNodes == {"s1"}
\* @type: Set(Str);
MC_Clients == {}
MC_MaxTerm == 1
MC_MaxEpoch == 0
MC_MaxLogLen == 0
MC_MaxRequests == 0
MC_MaxCopies == 1
MC_MaxFaults == 0
\* @type: Set(Str);
MC_BUGS == {"DoubleVote"}

\* TLC only: at most this many distinct messages in transit.
MC_Constraint == Cardinality(DOMAIN msgs) <= 6
===============================================================================
