-------------------------------- MODULE MC_3x3 --------------------------------
(*
  Model configuration: 3 sync nodes and 3 store nodes, one client with one
  request, two terms, two epochs past the initial one, and one fault (a
  crash, a lost or a duplicated message). MC_3x3.cfg names these operators
  as the values of Cluster's constants, for TLC and Apalache.
*)
EXTENDS Cluster

\* @type: Set(Str);
MC_SyncNodes == {"n1", "n2", "n3"}
\* @type: Set(Str);
MC_StoreNodes == {"s1", "s2", "s3"}
\* @type: Set(Str);
MC_Clients == {"c1"}
MC_MaxTerm == 2
MC_MaxEpoch == 2
MC_MaxLogLen == 1
MC_MaxRequests == 1
MC_MaxCopies == 1
MC_MaxFaults == 1
\* @type: Set(Str);
MC_BUGS == {}

\* TLC only (Apalache ignores CONSTRAINT and bounds the length instead): at
\* most this many distinct messages in transit.
MC_Constraint == Cardinality(DOMAIN msgs) <= 3
===============================================================================
