------------------------ MODULE MC_bug_SkipEpochCheck -------------------------
(*
  Bug configuration: 3 sync nodes x 2 store nodes with the SkipEpochCheck
  bug switched on. The checker is expected to report a violation of
  EpochFencingInv: a delayed NewEpoch of epoch 1 reinstalls epoch 1 on a
  store node that already installed epoch 2.
*)
EXTENDS Cluster

\* @type: Set(Str);
MC_SyncNodes == {"n1", "n2", "n3"}
\* @type: Set(Str);
MC_StoreNodes == {"s1", "s2"}
\* @type: Set(Str);
MC_Clients == {}
MC_MaxTerm == 1
MC_MaxEpoch == 2
MC_MaxLogLen == 0
MC_MaxRequests == 0
MC_MaxCopies == 1
MC_MaxFaults == 0
\* @type: Set(Str);
MC_BUGS == {"SkipEpochCheck"}

\* TLC only: at most this many distinct messages in transit.
MC_Constraint == Cardinality(DOMAIN msgs) <= 4
===============================================================================
